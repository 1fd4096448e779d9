"""The job queue of a deployment on several machines (``NEWSBOT_JOBS=queue``, PostgreSQL).

procrastinate keeps the jobs in the database newsbot already uses: ``newsbot worker``
processes fetch sources and embed passages (``tasks``), bots queue jobs and follow their
progress (``bot.services.queued``) and keep their own index up to date from the database
(``follow``). With SQLite, or ``NEWSBOT_JOBS=inline``, none of this runs.
"""
