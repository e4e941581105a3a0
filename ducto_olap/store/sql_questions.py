"""The four grouped questions in PostgreSQL SQL (aggregate_stats derives from them).

Text ties sort with ``COLLATE "C"``: byte order of UTF-8, which is code point
order, the order Python, DuckDB and Polars use. The default collation of most
clusters disagrees.
"""

_SPEND = "type = 'usage' AND amount < 0 AND created_at >= %s AND created_at < %s"

SPEND_BY_USER = f"""
SELECT user_id, sum(-amount) AS total, count(*) AS count
FROM credit_transactions
WHERE {_SPEND}
GROUP BY user_id
ORDER BY total DESC, user_id COLLATE "C"
"""

TOP_USERS = f"""
SELECT user_id, sum(-amount) AS total
FROM credit_transactions
WHERE {_SPEND}
GROUP BY user_id
ORDER BY total DESC, user_id COLLATE "C"
LIMIT %s
"""

SPEND_BY_MODEL = f"""
SELECT model, total, count
FROM (
    SELECT coalesce(metadata ->> 'model', 'unknown') AS model, sum(-amount) AS total,
           count(*) AS count
    FROM credit_transactions
    WHERE {_SPEND}
    GROUP BY 1
) AS per_model
ORDER BY total DESC, model COLLATE "C"
"""

DAILY_SPEND = f"""
SELECT to_char((created_at AT TIME ZONE %s)::date, 'YYYY-MM-DD') AS day,
       sum(-amount) AS total, count(*) AS count
FROM credit_transactions
WHERE {_SPEND}
GROUP BY 1
ORDER BY 1
"""
