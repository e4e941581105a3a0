"""Ledger rows out of PostgreSQL as Arrow batches in the lake schema.

One :class:`LedgerReader` is one ``REPEATABLE READ, READ ONLY`` transaction on
an ADBC connection. Its snapshot fixes the horizon ``H =
pg_snapshot_xmin(pg_current_snapshot())``: every transaction with an id below
``H`` has finished, so the visible rows with ``cursor <= write_xid < H`` are
exactly the committed ones, and no later transaction can add a row below ``H``.
That makes ``H`` a commit-safe cursor, whatever the rows' ``created_at`` and
whoever wrote them.

ADBC streams ``COPY ... TO STDOUT (FORMAT binary)`` straight into Arrow in C++,
which is why the hot path never touches a Python object per row.

A large range is read over two connections at once, each the heap's pages on
one side of the range's median page, the second in the first's snapshot
(``pg_export_snapshot``, as ``pg_dump -j`` does): a COPY runs on one server
core, and on a small machine one stream leaves the server idle whenever the
client is busy writing Parquet.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa
import tenacity

from ducto_olap.errors import ExportError, LakeError
from ducto_olap.export.memory import tune_malloc
from ducto_olap.lake.layout import LAKE_SCHEMA
from ducto_olap.settings import mask_dsn

# ``amount`` travels as its unscaled int64 (NUMERIC(18,4) * 10^4 always fits),
# so Arrow gets exact decimals without parsing text or touching a float.
_SELECT_COLUMNS = (
    "id, user_id, (amount * 10000)::int8 AS amount, type, operation_type, "
    "metadata->>'model' AS model, metadata::text AS metadata, created_at, "
    "reservation_id::text AS reservation_id, refund_of, write_xid::text::int8 AS write_xid"
)

# Batches read ahead per stream while the caller writes: ADBC parses the COPY
# stream and Parquet encodes in C++ with the GIL released, so the two overlap.
PREFETCH_BATCHES = 2
#: A range of at least this many rows (estimated) is read as two streams; a
#: smaller one is not worth a connection.
SPLIT_MIN_ROWS = 600_000
#: Heap pages sampled to place the split between two streams.
SAMPLE_PAGES = 2_000
logger = logging.getLogger("ducto_olap.export")

#: The heap's size in pages.
HEAP_PAGES = "SELECT pg_relation_size('credit_transactions') / current_setting('block_size')::int8"
_SNAPSHOT_ID = re.compile(r"[0-9A-F]+(-[0-9A-F]+)+")

_AMOUNT = LAKE_SCHEMA.field("amount").type
_CREATED_AT = LAKE_SCHEMA.field("created_at").type


def ledger_query(
    xid_from: int, xid_to: int, pages: tuple[int | None, int | None] = (None, None)
) -> str:
    """The SELECT of the rows with ``xid_from <= write_xid < xid_to``, in lake columns.

    ``pages`` limits it to the heap pages ``first <= page < last`` (None: no bound).

    The bounds are inlined as literals: ADBC streams COPY only for statements
    without bound parameters, and literal bounds let the planner choose a
    sequential (or TID range) scan for a full export and the ``write_xid`` index
    for a small one. All are integers checked here, never user text.
    """
    query = (
        f"SELECT {_SELECT_COLUMNS} FROM credit_transactions WHERE {_xid_range(xid_from, xid_to)}"
    )
    first, last = pages
    if first is not None:
        query += f" AND ctid >= '({_page(first)},0)'::tid"
    if last is not None:
        query += f" AND ctid < '({_page(last)},0)'::tid"
    return query


def _xid_range(xid_from: int, xid_to: int) -> str:
    """The condition ``xid_from <= write_xid < xid_to``."""
    return f"write_xid >= {xid_literal(xid_from)} AND write_xid < {xid_literal(xid_to)}"


def _page(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise LakeError(f"heap page {value!r} is not a block number")
    return value


def xid_literal(value: int) -> str:
    """An ``xid8`` SQL literal of a transaction id that must be a non-negative int."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LakeError(
            f"ledger cursor {value!r} is not a transaction id; the commit log is damaged, "
            f"rebuild the lake with a fresh export"
        )
    return f"'{value}'::xid8"


def to_lake_batch(raw: pa.RecordBatch) -> pa.RecordBatch:
    """A batch of the ledger query as ``LAKE_SCHEMA``: exact decimal amounts, UTC times."""
    columns = [raw.column(index) for index in range(raw.num_columns)]
    columns[2] = _unscaled_to_decimal(columns[2])
    if columns[7].type != _CREATED_AT:
        columns[7] = columns[7].cast(_CREATED_AT)
    return pa.RecordBatch.from_arrays(columns, schema=LAKE_SCHEMA)


def _unscaled_to_decimal(unscaled: pa.Array) -> pa.Array:
    # decimal128 is 16-byte little-endian two's complement: the int64 as the low
    # word and its sign as the high word. The words live in an Arrow buffer, not
    # numpy's: Arrow's pool reuses its pages across batches, where numpy's
    # megabyte per batch was mmapped afresh (40,000 page faults per 10M rows).
    values = unscaled.to_numpy(zero_copy_only=True)
    buffer = pa.allocate_buffer(16 * len(values))
    words = np.frombuffer(buffer, dtype=np.int64).reshape(len(values), 2)
    words[:, 0] = values
    np.right_shift(values, 63, out=words[:, 1])
    return pa.Array.from_buffers(_AMOUNT, len(values), [None, buffer])


class LedgerReader:
    """One read-only snapshot of the ledger: its horizon and its rows below it.

    Args:
        dsn: a libpq connection string or URI.
        snapshot: a snapshot id from ``pg_export_snapshot()`` to read in, so that
            two readers see the same rows; default a snapshot of its own.

    Example:
        >>> with LedgerReader(dsn) as reader:
        ...     for batch in reader.batches(0, reader.horizon):
        ...         ...
    """

    def __init__(self, dsn: str, snapshot: str | None = None) -> None:
        self.dsn = dsn
        self.snapshot = snapshot
        self._connection: Any = None
        self.horizon = 0
        #: The ledger's identity (``ducto_olap_ledger``), None for a database set up
        #: before identities existed: the reader never writes, so it cannot add one.
        self.ledger_id: str | None = None

    def __enter__(self) -> LedgerReader:
        tune_malloc()
        try:
            # The second reader is not retried: a refusal means one stream.
            connect = _connect if self.snapshot is not None else _connect_while_limit_is_full
            self._connection = connect(self.dsn)
            self._execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            if self.snapshot is not None:
                self._execute(f"SET TRANSACTION SNAPSHOT '{_snapshot_id(self.snapshot)}'")
            self.ledger_id = self._read_identity()
            self.horizon = int(self._scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text"))
        except ExportError:
            self.close()
            raise
        except Exception as error:
            self.close()
            raise self._wrap(
                error, "cannot open a snapshot of the ledger", fix="check --dsn or DUCTO_OLAP_DSN"
            ) from error
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """End the read-only transaction and the connection."""
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.rollback()
            finally:
                connection.close()

    def lag_rows(self) -> int:
        """Visible rows at or above the horizon: committed, but left for the next export."""
        query = (
            "SELECT count(*) FROM credit_transactions "
            f"WHERE write_xid >= {xid_literal(self.horizon)}"
        )
        try:
            return int(self._scalar(query))
        except Exception as error:
            raise self._wrap(error, "cannot count the rows above the horizon") from error

    def batches(self, xid_from: int, xid_to: int) -> Iterator[pa.RecordBatch]:
        """Stream the rows with ``xid_from <= write_xid < xid_to`` as lake batches.

        Batches come in no particular order; a large range comes over two
        connections (see the module docstring).
        """
        split = self._split_page(xid_from, xid_to)
        other = None if split is None else self._second_reader()
        if split is None or other is None:
            yield from prefetched([self._stream(xid_from, xid_to)], PREFETCH_BATCHES)
            return

        try:
            streams = [
                self._stream(xid_from, xid_to, (None, split)),
                other._stream(xid_from, xid_to, (split, None)),
            ]
            yield from prefetched(streams, 2 * PREFETCH_BATCHES)
        finally:
            other.close()

    def _second_reader(self) -> LedgerReader | None:
        """A reader in this one's snapshot, or None when the server takes no more
        connections (the range is then read as one stream)."""
        snapshot = self._export_snapshot()
        other = LedgerReader(self.dsn, snapshot=snapshot)
        try:
            other.__enter__()
        except ExportError as error:
            logger.info("export: reading over one connection (%s)", error)
            return None
        if other.horizon != self.horizon:
            other.close()
            raise ExportError(
                f"the second connection to {mask_dsn(self.dsn)} saw another snapshot "
                f"(horizon {other.horizon}, not {self.horizon}); run the export again"
            )
        return other

    def _stream(
        self, xid_from: int, xid_to: int, pages: tuple[int | None, int | None] = (None, None)
    ) -> Iterator[pa.RecordBatch]:
        cursor = self._connection.cursor()
        try:
            query = ledger_query(xid_from, xid_to, pages)
            logger.debug("export: COPY (%s)", query)
            cursor.execute(query)
            for raw in cursor.fetch_record_batch():
                if raw.num_rows:
                    yield to_lake_batch(raw)
        except (LakeError, ExportError):
            raise
        except Exception as error:
            raise self._wrap(error, "reading the ledger failed") from error
        finally:
            cursor.close()

    def _split_page(self, xid_from: int, xid_to: int) -> int | None:
        """The heap page halving the range's rows, or None to read it as one stream.

        Estimated from the rows of a sample of about :data:`SAMPLE_PAGES` pages
        (``TABLESAMPLE SYSTEM``): the median of their pages, and their count scaled
        to the whole heap. The range's first and last rows by ``write_xid`` would
        not do: once a vacuum has recorded the free space of older pages,
        PostgreSQL puts new rows there, so the newest row of a ledger can sit
        anywhere (one vacuumed 10M-row ledger split 24/76). A poor estimate makes
        the halves uneven, never wrong: they cover every page.
        """
        try:
            pages = int(self._scalar(HEAP_PAGES))
            if pages == 0:
                return None
            percent = min(100.0, 100.0 * SAMPLE_PAGES / pages)
            median, sampled = self._row(
                "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY (ctid::text::point)[0]), "
                "count(*) FROM credit_transactions "
                f"TABLESAMPLE SYSTEM ({percent:.6f}) REPEATABLE (0) "
                f"WHERE {_xid_range(xid_from, xid_to)}"
            )
        except Exception as error:
            raise self._wrap(error, "cannot locate the rows to export") from error
        if median is None or sampled * 100.0 / percent < SPLIT_MIN_ROWS:
            return None
        return int(median)

    def _export_snapshot(self) -> str:
        try:
            return str(self._scalar("SELECT pg_export_snapshot()"))
        except Exception as error:
            raise self._wrap(error, "cannot share the export's snapshot") from error

    def _read_identity(self) -> str | None:
        # to_regclass answers NULL for a missing table instead of failing, which
        # would abort the snapshot's transaction.
        cursor = self._connection.cursor()
        try:
            cursor.execute(
                "SELECT to_regclass('credit_transactions') IS NOT NULL, "
                "to_regclass('ducto_olap_ledger') IS NOT NULL"
            )
            has_ledger, has_identity = cursor.fetchone()
        finally:
            cursor.close()
        if not has_ledger:
            raise ExportError(
                f"no ledger in {mask_dsn(self.dsn)}: credit_transactions does not exist; "
                f"create it with PostgresStore(dsn).setup() or fill it with ducto-olap seed"
            )
        if not has_identity:
            return None
        value = self._scalar(
            "SELECT coalesce((SELECT ledger_id::text FROM ducto_olap_ledger LIMIT 1), '')"
        )
        return str(value) or None

    def _execute(self, statement: str) -> None:
        cursor = self._connection.cursor()
        try:
            cursor.execute(statement)
        finally:
            cursor.close()

    def _scalar(self, query: str) -> Any:
        row = self._row(query)
        return None if row is None else row[0]

    def _row(self, query: str) -> Any:
        cursor = self._connection.cursor()
        try:
            cursor.execute(query)
            return cursor.fetchone()
        finally:
            cursor.close()

    def _wrap(self, error: Exception, what: str, fix: str = "") -> ExportError:
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        # libpq quotes a malformed DSN whole in its message: mask that too.
        message = f"{what} at {mask_dsn(self.dsn)}: {mask_dsn(text)}"
        return ExportError(f"{message}; {fix}" if fix else message)


def _connect(dsn: str) -> Any:
    import adbc_driver_postgresql.dbapi as adbc

    return adbc.connect(dsn)


def _is_connection_limit(error: BaseException) -> bool:
    # ADBC gives no SQLSTATE for a refused connection, only libpq's message: a
    # role's or database's limit, or the server's max_connections.
    return any(text in str(error) for text in ("too many connections", "too many clients"))


@tenacity.retry(
    retry=tenacity.retry_if_exception(_is_connection_limit),
    stop=tenacity.stop_after_attempt(6),
    wait=tenacity.wait_exponential(multiplier=0.02, max=0.5),
    reraise=True,
)
def _connect_while_limit_is_full(dsn: str) -> Any:
    """:func:`_connect`, tried again for a moment while the role's connection limit is full.

    ADBC opens a connection of its own to read the server's types and closes it
    just before it connects, so a role allowed one connection can find that one
    still exiting: 7 of 40 connects were refused so.
    """
    return _connect(dsn)


def prefetched(streams: list[Iterator[pa.RecordBatch]], depth: int) -> Iterator[pa.RecordBatch]:
    """Iterate ``streams`` at once, each on a helper thread, at most ``depth`` batches ahead.

    Batches come in the order they arrive; an error in any stream stops them all.
    """
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce(stream: Iterator[pa.RecordBatch]) -> None:
        try:
            for batch in stream:
                if not _offer(slots, stop, ("batch", batch)):
                    return
            _offer(slots, stop, ("done", None))
        except BaseException as error:
            _offer(slots, stop, ("error", error))

    threads = [
        threading.Thread(target=produce, args=(stream,), name="ducto-export-reader", daemon=True)
        for stream in streams
    ]
    for thread in threads:
        thread.start()
    try:
        running = len(threads)
        while running:
            kind, value = slots.get()
            if kind == "batch":
                yield value
            elif kind == "error":
                raise value
            else:
                running -= 1
    finally:
        stop.set()
        for thread in threads:
            while thread.is_alive():
                with contextlib.suppress(queue.Empty):
                    slots.get(timeout=0.05)
            thread.join()


def _snapshot_id(value: str) -> str:
    # Inlined into SET TRANSACTION SNAPSHOT, which takes no parameters; it comes
    # from the server, and is checked all the same.
    if not _SNAPSHOT_ID.fullmatch(value):
        raise ExportError(f"{value!r} is not a snapshot id from pg_export_snapshot()")
    return value


def _offer(slots: queue.Queue[tuple[str, Any]], stop: threading.Event, item: Any) -> bool:
    while not stop.is_set():
        try:
            slots.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False
