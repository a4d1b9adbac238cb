"""The demo company's people: a department tree with heads, and who sells what when.

User IDs have gaps (deleted accounts), two managers are dismissed but still
own records, one user sits in two departments, one was hired two months
before "now", and ``UNKNOWN_USER`` owns records without being in user.get.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from random import Random
from typing import Any

from rop.demo.clock import DAY, Clock

# A deleted employee: responsible for old records, absent from user.get.
UNKNOWN_USER = 29
ADMIN = 1
BOT = 34  # the website integration: creates web-form leads

# (ID, NAME, PARENT, UF_HEAD, SORT)
DEPARTMENTS: tuple[tuple[int, str, int | None, int, int], ...] = (
    (1, "ООО «Вектор Трейд»", None, 1, 500),
    (2, "Коммерческая служба", 1, 2, 500),
    (3, "Отдел продаж «Москва»", 2, 3, 100),
    (4, "Отдел продаж — Регионы", 2, 5, 200),
    (5, "Отдел ключевых клиентов", 2, 8, 300),
    (6, "Тендерная группа", 5, 14, 100),
    (7, "Маркетинг & PR", 1, 33, 600),
)


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    last_name: str
    second_name: str
    gender: str
    position: str
    departments: tuple[int, ...]
    groups: str  # what they are given: "0"/"1"/"3" deal pipelines, "L" leads
    weight: float = 1.0  # share of the work relative to an average manager
    hired: float = -0.2  # fraction of the window [start, now]; negative = before it
    fired: float | None = None  # fraction of the window; None = still employed


_MANAGER = "Менеджер по продажам"
PEOPLE: tuple[Person, ...] = (
    Person(1, "Андрей", "Соколов", "Викторович", "M", "Генеральный директор", (1,), ""),
    Person(2, "Елена", "Кузнецова", "Игоревна", "F", "Коммерческий директор", (2,), ""),
    Person(3, "Дмитрий", "Орлов", "Сергеевич", "M", "Руководитель отдела продаж", (3,), "0", 0.5),
    Person(5, "Ольга", "Михайлова", "Петровна", "F", "Руководитель отдела продаж", (4,), "0", 0.5),
    Person(6, "Иван", "Петров", "Андреевич", "M", _MANAGER, (3,), "0L", 1.6),
    Person(7, "Мария", "Смирнова", "Олеговна", "F", _MANAGER, (3,), "0L", 1.2),
    Person(8, "Алексей", "Волков", "Дмитриевич", "M", "Руководитель отдела", (5,), "13", 0.5),
    Person(9, "Наталья", "Попова", "Юрьевна", "F", _MANAGER, (3,), "0L", 0.8),
    Person(10, "Сергей", "Лебедев", "Павлович", "M", _MANAGER, (3,), "0L", 1.0),
    Person(11, "Анна-Мария", "Козлова", "Николаевна", "F", _MANAGER, (3,), "03L", 1.1),
    Person(13, "Павел", "Новиков", "Игоревич", "M", _MANAGER, (4,), "0L", 0.9),
    Person(14, "Татьяна", "Морозова", "Александровна", "F", "Руководитель группы", (6,), "1", 0.7),
    Person(15, "Максим", "Васильев", "Евгеньевич", "M", _MANAGER, (4,), "0L", 1.0, fired=0.55),
    Person(16, "Юлия", "Зайцева", "Романовна", "F", _MANAGER, (4,), "0L", 1.3),
    Person(17, "Артём", "Павлов", "Владимирович", "M", _MANAGER, (4,), "0", 0.6),
    Person(19, "Екатерина", "Семёнова", "Андреевна", "F", _MANAGER, (4,), "0L", 1.0),
    Person(
        20, "Николай", "Голубев", "Степанович", "M", "Менеджер по ключевым клиентам", (5,), "13"
    ),
    Person(
        21, "Ирина", "Виноградова", "Михайловна", "F", "Менеджер по ключевым клиентам", (5,), "3"
    ),
    Person(22, "Роман", "Богданов", "Олегович", "M", "Специалист по тендерам", (6,), "1"),
    Person(
        24, "Светлана", "Воробьёва", "Ивановна", "F", "Специалист по тендерам", (6,), "1", fired=0.8
    ),
    Person(
        25, "Виктор", "Фёдоров", "Алексеевич", "M", "Менеджер по ключевым клиентам", (5,), "3", 1.2
    ),
    Person(26, "Ксения", "Белова", "Сергеевна", "F", _MANAGER, (4, 3), "0L", 1.0),
    Person(
        27, "Глеб", "Тарасов", "Денисович", "M", "Стажёр отдела продаж", (3,), "0L", 0.7, hired=0.8
    ),
    Person(
        28, "Денис", "Комаров", "Юрьевич", "M", "Менеджер по ключевым клиентам", (5,), "13", 0.9
    ),
    Person(30, "Людмила", "Орлова", "Васильевна", "F", _MANAGER, (4,), "0L", 1.0),
    Person(31, "Кирилл", "Беляев", "Артёмович", "M", _MANAGER, (3,), "0L", 1.1),
    Person(33, "Оксана", "Киселёва", "Григорьевна", "F", "Маркетолог", (7,), ""),
    Person(BOT, "Интеграция", "с сайтом 🤖", "", "", "", (), ""),
    Person(35, "Ярослав", "Ершов", "Ильич", "M", "Специалист по тендерам", (6,), "1"),
    Person(36, "Вероника", "Медведева", "Станиславовна", "F", _MANAGER, (3,), "03L", 1.0),
    # Not in user.get (deleted), but owns records from the first months.
    Person(UNKNOWN_USER, "", "", "", "", "", (3,), "0L", 0.8, fired=0.35),
)
DISMISSED = tuple(p.id for p in PEOPLE if p.fired is not None and p.id != UNKNOWN_USER)
HEADS = {dept_id: head for dept_id, _, _, head, _ in DEPARTMENTS}


def department_records() -> list[dict[str, Any]]:
    """department.get: IDs and heads as strings; the root has no PARENT."""
    records = []
    for dept_id, name, parent, head, sort in DEPARTMENTS:
        record: dict[str, Any] = {"ID": str(dept_id), "NAME": name, "SORT": sort}
        if parent is not None:
            record["PARENT"] = str(parent)
        record["UF_HEAD"] = str(head)
        records.append(record)
    return records


def user_records(clock: Clock) -> list[dict[str, Any]]:
    """user.get: every employee except the deleted one."""
    span = clock.now - clock.start
    records = []
    for p in PEOPLE:
        if p.id == UNKNOWN_USER:
            continue
        registered = clock.start + int(p.hired * span) - 30 * DAY
        login = clock.start + int((p.fired if p.fired is not None else 1.0) * span) - 3 * 3600
        records.append(
            {
                "ID": str(p.id),
                "XML_ID": f"{p.id:08d}",
                "ACTIVE": p.fired is None,
                "NAME": p.name,
                "LAST_NAME": p.last_name,
                "SECOND_NAME": p.second_name,
                "EMAIL": "" if p.id == BOT else f"user{p.id}@vector-trade.ru",
                "LAST_LOGIN": clock.iso(min(login, clock.now)),
                "DATE_REGISTER": clock.iso(registered),
                "IS_ONLINE": "N",
                "TIME_ZONE_OFFSET": "0",
                "PERSONAL_GENDER": p.gender,
                "PERSONAL_MOBILE": "",
                "WORK_PHONE": "",
                "WORK_POSITION": p.position,
                "UF_DEPARTMENT": list(p.departments),
                "UF_PHONE_INNER": str(100 + p.id) if p.groups else "",
                "USER_TYPE": "employee",
            }
        )
    return records


class Roster:
    """Who can be given a new record at a moment: employed people of a group, by weight."""

    def __init__(self, clock: Clock) -> None:
        span = clock.now - clock.start
        self.hired = {p.id: clock.start + int(p.hired * span) for p in PEOPLE}
        self.fired = {
            p.id: (clock.start + int(p.fired * span) if p.fired is not None else clock.now + DAY)
            for p in PEOPLE
        }
        self.department = {p.id: (p.departments[0] if p.departments else 1) for p in PEOPLE}
        self._periods: dict[str, tuple[list[int], list[tuple[list[int], list[float]]]]] = {}
        for group in "013L":
            members = [p for p in PEOPLE if group in p.groups]
            edges = sorted(
                {self.hired[p.id] for p in members} | {self.fired[p.id] for p in members}
            )
            periods = []
            for edge in edges:
                ids, cumulative, total = [], [], 0.0
                for p in members:
                    if self.hired[p.id] <= edge < self.fired[p.id]:
                        total += p.weight
                        ids.append(p.id)
                        cumulative.append(total)
                periods.append((ids, cumulative))
            self._periods[group] = (edges, periods)

    def pick(self, rng: Random, group: str, moment: int) -> int:
        """A person of ``group`` employed at ``moment``, chosen by weight."""
        edges, periods = self._periods[group]
        i = max(bisect_right(edges, moment) - 1, 0)
        ids, cumulative = periods[i]
        if not ids:  # before anyone of the group was hired: the earliest period with people
            ids, cumulative = next(p for p in periods if p[0])
        return rng.choices(ids, cum_weights=cumulative)[0]

    def employed(self, user_id: int, moment: int) -> bool:
        return self.hired.get(user_id, 0) <= moment < self.fired.get(user_id, moment + 1)

    def stand_in(self, user_id: int) -> int:
        """Who acts for a person who has left: the head of their department."""
        return HEADS.get(self.department.get(user_id, 1), ADMIN)
