"""Bounds on what input may hold: the one place they are set, so a hostile file costs bounded time and memory."""

# Identifiers (customer_id, product_id, order_id, store_id, campaign ids...): a longer one is a broken export or
# an attack, never a real id. Its row is rejected as `id_too_long`, counted in the report.
MAX_ID_LENGTH = 128

# Mapping expressions (configs/datasets/*.yaml): configuration, so small. A partner's file cannot make the loader
# hang (``10 ** 10 ** 8``) or overflow the stack (a 20,000-term sum).
MAX_EXPRESSION_CHARS = 2_000
MAX_EXPRESSION_DEPTH = 100  # a chain such as a + b + c counts one level per term
MAX_EXPRESSION_NODES = 500
MAX_EXPONENT = 100  # |y| in x ** y on numbers
MAX_INTEGER_BITS = 256  # whole numbers an expression computes on constants
MAX_CONSTANT_CHARS = 1_000  # text an expression builds from constants ('ab' * 3)

# Cells converted to numbers at once when a CSV's columns are checked for numbers (bounds the extra memory).
CELLS_PER_BATCH = 1_000_000

# CSV lines (features/csvlines.py): a line longer than max(1 MiB, 1 KiB per column of the header) is set aside
# before pandas reads the file and rejected as `line_too_long`; the rejects file keeps its first characters only.
# An id is at most 128 characters (512 bytes of UTF-8), so 1 KiB a column leaves room for long text cells, and a
# 200 MB id costs a streaming pass, not gigabytes.
MAX_LINE_BYTES = 1 << 20
LINE_BYTES_PER_COLUMN = 1 << 10
MAX_HEADER_BYTES = 64 << 20  # a header longer than this stops the file (one line, exit 2)
LINE_EXCERPT_CHARS = 200


def line_limit(columns: int) -> int:
    """Longest CSV data line accepted, in bytes, for a file with ``columns`` columns."""
    return max(MAX_LINE_BYTES, LINE_BYTES_PER_COLUMN * columns)
