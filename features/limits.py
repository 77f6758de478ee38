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
