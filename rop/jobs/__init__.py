"""Server mode's sync workers on a PostgreSQL job queue (procrastinate).

sources.py says where each portal syncs from (a registered webhook or an
installed app's tokens); pending.py keeps what events named until a worker
read it; queue.py builds the procrastinate app: the tasks, their locks and
the periodic re-scans; defer.py is what other processes (the CLI, the web)
call to queue work. docs/SERVER.md "Workers" tells the whole story.
"""
