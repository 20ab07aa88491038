"""parse: OpenStack log files -> a table of records with stable template ids."""

from .engine import FileReport, ParseResult, Parser, parse_paths
from .masking import mask, template_of
from .records import COLUMNS, SCHEMA, Record, iter_records
from .templates import TemplateStore, template_id

__all__ = [
    "COLUMNS", "FileReport", "ParseResult", "Parser", "Record", "SCHEMA", "TemplateStore",
    "iter_records", "mask", "parse_paths", "template_id", "template_of",
]
