// The parent side of Bitrix24's frame protocol, as @bitrix24/b24jssdk 2.2.0 speaks it
// (docs/EMULATOR.md "The frame protocol"; jssdk packages/jssdk/src/frame/message/controller.ts).
//
// The app's frame posts strings "command:params:callbackKey:APP_SID" (params JSON,
// left out when empty) to the portal's origin; the portal answers the frame with
// "callbackKey:JSON" (or just "callbackKey" for a void answer).
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("emu-config").textContent);
  var frame = document.getElementById("app-frame");
  var title = document.getElementById("app-title");
  var slider = document.getElementById("slider");
  var sliderFrame = document.getElementById("slider-frame");
  var sliderClose = document.getElementById("slider-close");
  var pendingSlider = null; // callback key of the openPath waiting for the slider to close
  var seen = [];
  window.emuFrameLog = seen; // what the app asked for, for tests and curious people

  function reply(key, origin, data) {
    var message = data === undefined ? key : key + ":" + JSON.stringify(data);
    frame.contentWindow.postMessage(message, origin);
  }

  function call(action, body) {
    return fetch(cfg.actions + action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    }).then(function (r) {
      return r.json();
    });
  }

  function closeSlider(origin) {
    slider.hidden = true;
    sliderFrame.removeAttribute("src");
    if (pendingSlider !== null) {
      reply(pendingSlider, origin, { result: "close" });
      pendingSlider = null;
    }
  }

  var handlers = {
    getInitData: function (params, key, origin) {
      reply(key, origin, cfg.init);
    },
    setInstall: function (params, key, origin) {
      cfg.init.FIRST_RUN = false;
      call("install").then(function () {
        reply(key, origin);
      });
    },
    setInstallFinish: function (params, key, origin) {
      call("finish").then(function (answer) {
        reply(key, origin, answer);
        // installation-finish.md: after the installer the page reloads into the app.
        setTimeout(function () {
          window.location.reload();
        }, 300);
      });
    },
    refreshAuth: function (params, key, origin) {
      call("refresh").then(function (auth) {
        cfg.init.AUTH_ID = auth.AUTH_ID;
        cfg.init.REFRESH_ID = auth.REFRESH_ID;
        cfg.init.AUTH_EXPIRES = auth.AUTH_EXPIRES;
        reply(key, origin, auth);
      });
    },
    resizeWindow: function (params, key, origin) {
      var width = params.width;
      var height = parseInt(params.height, 10);
      if (height > 0) frame.style.height = height + "px";
      if (typeof width === "number" && width > 0) frame.style.width = width + "px";
      else if (typeof width === "string" && /^\d+(px|%)?$/.test(width)) frame.style.width = /\d$/.test(width) ? width + "px" : width;
      reply(key, origin);
    },
    setTitle: function (params, key, origin) {
      var text = String(params.title || "");
      title.textContent = text;
      document.title = text;
      reply(key, origin);
    },
    setScroll: function (params, key, origin) {
      window.scrollTo(0, parseInt(params.scroll, 10) || 0);
      reply(key, origin);
    },
    openPath: function (params, key, origin) {
      // The SDK prefixes a width hint path ("/crm/type/0/details/0/../../../../..");
      // resolving it against the portal's address leaves the real path.
      var url = new URL(String(params.path || "/"), window.location.origin);
      if (url.origin !== window.location.origin) {
        reply(key, origin, { result: "error", errorCode: "PATH_NOT_ALLOWED" });
        return;
      }
      if (pendingSlider !== null) reply(pendingSlider, origin, { result: "close" });
      pendingSlider = key;
      sliderFrame.src = url.pathname + url.search;
      slider.hidden = false;
      slider.dataset.origin = origin;
    },
    reloadWindow: function (params, key, origin) {
      reply(key, origin);
      window.location.reload();
    },
    closeApplication: function (params, key, origin) {
      reply(key, origin);
      window.location.href = "/";
    },
    setAppOption: function (params, key, origin) {
      cfg.init.APP_OPTIONS[params.name] = params.value;
      reply(key, origin);
    },
    setUserOption: function (params, key, origin) {
      cfg.init.USER_OPTIONS[params.name] = params.value;
      reply(key, origin);
    },
    getInterface: function (params, key, origin) {
      reply(key, origin, { command: [], action: [], event: [] });
    },
  };

  window.addEventListener("message", function (event) {
    if (event.source !== frame.contentWindow) return;
    if (cfg.origins.indexOf(event.origin) < 0) return;
    if (typeof event.data !== "string") return; // the object form is for placement commands with ':'
    var parts = event.data.split(":");
    if (parts.length < 3) return;
    var command = parts[0];
    var sid = parts[parts.length - 1];
    var key = parts[parts.length - 2];
    if (sid !== cfg.sid) return;
    var raw = parts.slice(1, -2).join(":");
    var params = {};
    if (raw) {
      try {
        params = JSON.parse(raw);
      } catch (e) {
        params = raw;
      }
    }
    seen.push({ command: command, params: params });
    var handler = handlers[command];
    if (handler) handler(params, key, event.origin);
    else reply(key, event.origin, { result: "error", errorCode: "METHOD_NOT_SUPPORTED" });
  });

  sliderClose.addEventListener("click", function () {
    closeSlider(slider.dataset.origin || cfg.origins[0]);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !slider.hidden) closeSlider(slider.dataset.origin || cfg.origins[0]);
  });

  // Post Bitrix24's fields into the named frame (its name is DOMAIN|PROTOCOL|APP_SID,
  // which becomes the frame's window.name, where the SDK reads it).
  document.getElementById("app-form").submit();
})();
