/*
 * The parser's hot paths in C. Each has a Python twin that stays the definition; tests hold the two to the same
 * output (tests/test_speedups.py, tests/test_jsonl.py). Only ASCII text takes the C path: the regexes' \w, \d and
 * \s are Unicode-aware, so anything else is left to them.
 *
 * - template_of / mask: the masking language of openstack_rca.parse.masking.VARIABLE,
 *
 *     (?<![\w.+/-])( [A-Za-z_.+-]*+ \d [\w.+/-]*+ (?: , <same> )*+  |  / PATH  |  https?:// PATH )
 *     PATH = [^\s()'",\]]*+
 *
 *   Every quantifier is possessive and no alternative can match empty, so a single left-to-right scan with no
 *   backtracking reproduces the regex exactly.
 * - parse_oslo: the oslo header regexes of layouts.py.
 * - RowBuilder: the parser's rows as Arrow column buffers; its scan() takes runs of plain oslo lines whole.
 * - json_strings / params_json: JSON text for ``rca parse --json`` (openstack_rca.parse.jsonl).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static unsigned char T_[256], P_[256], C_[256], D_[256];

static void init_tables(void) {
    for (int c = 0; c < 256; c++) {
        int word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        D_[c] = (c >= '0' && c <= '9');
        T_[c] = word || c == '.' || c == '+' || c == '/' || c == '-';
        P_[c] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == '+' || c == '-');
        /* Python's \s on str: space, \t\n\v\f\r and \x1c-\x1f */
        int space = c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f);
        C_[c] = !(space || c == '(' || c == ')' || c == '\'' || c == '"' || c == ',' || c == ']') && c < 128;
    }
}

/* One TOKEN starting at i: returns its end, or -1. */
static Py_ssize_t token_end(const unsigned char *s, Py_ssize_t n, Py_ssize_t i) {
    while (i < n && P_[s[i]]) i++;
    if (i >= n || !D_[s[i]]) return -1;
    i++;
    while (i < n && T_[s[i]]) i++;
    return i;
}

/* The variable starting at i (i is at a token boundary): returns its end, or -1. */
static Py_ssize_t variable_end(const unsigned char *s, Py_ssize_t n, Py_ssize_t i) {
    Py_ssize_t j = token_end(s, n, i);
    if (j >= 0) {
        while (j < n && s[j] == ',') {
            Py_ssize_t k = token_end(s, n, j + 1);
            if (k < 0) break;
            j = k;
        }
        return j;
    }
    Py_ssize_t k = -1;
    if (s[i] == '/') k = i + 1;
    else if (n - i >= 7 && memcmp(s + i, "http://", 7) == 0) k = i + 7;
    else if (n - i >= 8 && memcmp(s + i, "https://", 8) == 0) k = i + 8;
    if (k < 0) return -1;
    while (k < n && C_[s[k]]) k++;
    return k;
}

/* A growable byte buffer, kept in a bytes object so finishing it hands the memory to Python without a copy. */
typedef struct {
    PyObject *obj;
    char *p;
    Py_ssize_t len, cap;
} Buf;

static int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    if (b->obj == NULL) b->obj = PyBytes_FromStringAndSize(NULL, cap);
    else if (_PyBytes_Resize(&b->obj, cap) < 0) b->obj = NULL;  /* it freed the old object */
    if (b->obj == NULL) { b->p = NULL; b->len = b->cap = 0; return -1; }
    b->p = PyBytes_AS_STRING(b->obj);
    b->cap = cap;
    return 0;
}

static int buf_put(Buf *b, const void *src, Py_ssize_t n) {
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return 0;
}

static void buf_free(Buf *b) {
    Py_CLEAR(b->obj);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* The buffer's bytes as a bytes object (a new reference); the buffer is left empty. */
static PyObject *buf_take(Buf *b) {
    PyObject *res = b->obj;
    if (res == NULL) res = PyBytes_FromStringAndSize("", 0);
    else if (_PyBytes_Resize(&res, b->len) < 0) res = NULL;
    b->obj = NULL;
    b->p = NULL;
    b->len = b->cap = 0;
    return res;
}

/* JSON string body of s[0:n] as json.dumps(ensure_ascii=False) writes it: UTF-8 bytes >= 0x80 pass through. */
static int json_escape(Buf *b, const unsigned char *s, Py_ssize_t n) {
    static const char hex[] = "0123456789abcdef";
    if (buf_reserve(b, 6 * n) < 0) return -1;
    char *o = b->p + b->len;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\') { *o++ = (char)c; continue; }
        *o++ = '\\';
        switch (c) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            default: *o++ = 'u'; *o++ = '0'; *o++ = '0'; *o++ = hex[c >> 4]; *o++ = hex[c & 15];
        }
    }
    b->len = o - b->p;
    return 0;
}

/* The template of s[0:n] into out (room for 3n bytes: "1" -> "<*>"); each variable is appended to params (a list)
 * and/or to json (as the JSON array json.dumps writes) when those are not NULL. Returns the template's length,
 * or -1 with an exception set. */
static Py_ssize_t write_template(const unsigned char *s, Py_ssize_t n, char *out, PyObject *params, Buf *json) {
    Py_ssize_t o = 0, i = 0, lit = 0, count = 0;
    if (json && buf_put(json, "[", 1) < 0) return -1;
    while (i < n) {
        if (!T_[s[i]] || (i > 0 && T_[s[i - 1]])) { i++; continue; }
        Py_ssize_t j = variable_end(s, n, i);
        if (j < 0) { i++; continue; }
        memcpy(out + o, s + lit, i - lit);
        o += i - lit;
        memcpy(out + o, "<*>", 3);
        o += 3;
        if (params) {
            PyObject *p = PyUnicode_FromStringAndSize((const char *)s + i, j - i);
            if (p == NULL || PyList_Append(params, p) < 0) { Py_XDECREF(p); return -1; }
            Py_DECREF(p);
        }
        if (json && (buf_put(json, count ? ", \"" : "\"", count ? 3 : 1) < 0 || json_escape(json, s + i, j - i) < 0
                     || buf_put(json, "\"", 1) < 0))
            return -1;
        count++;
        i = lit = j;
    }
    memcpy(out + o, s + lit, n - lit);
    if (json && buf_put(json, "]", 1) < 0) return -1;
    return o + n - lit;
}

static PyObject *scan(PyObject *arg, int want_params) {
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "mask expects str");
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(arg)) Py_RETURN_NONE;
    const unsigned char *s = (const unsigned char *)PyUnicode_DATA(arg);
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg);
    char stackbuf[4096];
    char *out = (3 * n + 1 <= (Py_ssize_t)sizeof(stackbuf)) ? stackbuf : PyMem_Malloc(3 * n + 1);
    if (out == NULL) return PyErr_NoMemory();
    PyObject *params = NULL, *tpl = NULL, *res = NULL;
    if (want_params && (params = PyList_New(0)) == NULL) goto done;
    Py_ssize_t o = write_template(s, n, out, params, NULL);
    if (o < 0 || (tpl = PyUnicode_FromStringAndSize(out, o)) == NULL) goto done;
    if (!params) { res = tpl; tpl = NULL; }
    else res = PyTuple_Pack(2, tpl, params);
done:
    if (out != stackbuf) PyMem_Free(out);
    Py_XDECREF(tpl);
    Py_XDECREF(params);
    return res;
}

/* params_json(message): json.dumps(mask(message)[1], ensure_ascii=False) for ASCII text, else None. */
static PyObject *params_json(PyObject *self, PyObject *arg) {
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "params_json expects str");
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(arg)) Py_RETURN_NONE;
    const unsigned char *s = (const unsigned char *)PyUnicode_DATA(arg);
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg);
    char stackbuf[4096];
    char *out = (3 * n + 1 <= (Py_ssize_t)sizeof(stackbuf)) ? stackbuf : PyMem_Malloc(3 * n + 1);
    if (out == NULL) return PyErr_NoMemory();
    Buf json = {0};
    PyObject *res = NULL;
    if (write_template(s, n, out, NULL, &json) >= 0) res = PyUnicode_FromStringAndSize(json.p, json.len);
    if (out != stackbuf) PyMem_Free(out);
    buf_free(&json);
    return res;
}

/* json_strings(offsets, data, offset, length) -> (offsets, data): each value of an Arrow string array (its int32
 * offsets and UTF-8 data buffers, from element ``offset`` on) as a quoted JSON string, in the same layout. */
static PyObject *json_strings(PyObject *self, PyObject *args) {
    Py_buffer ob, db;
    Py_ssize_t start, length;
    if (!PyArg_ParseTuple(args, "y*y*nn", &ob, &db, &start, &length)) return NULL;
    PyObject *res = NULL;
    Buf out = {0}, offs = {0};
    const int32_t *in = (const int32_t *)ob.buf;
    if (start < 0 || length < 0 || (start + length + 1) * (Py_ssize_t)sizeof(int32_t) > ob.len
        || (length && (in[start] < 0 || in[start + length] > db.len))) {
        PyErr_SetString(PyExc_ValueError, "json_strings: offsets do not fit the buffers");
        goto done;
    }
    if (buf_reserve(&offs, (length + 1) * sizeof(int32_t)) < 0) goto done;
    int32_t *o = (int32_t *)offs.p;
    o[0] = 0;
    for (Py_ssize_t k = 0; k < length; k++) {
        int32_t a = in[start + k], z = in[start + k + 1];
        if (z < a || z > db.len) {
            PyErr_SetString(PyExc_ValueError, "json_strings: offsets do not fit the buffers");
            goto done;
        }
        const unsigned char *v = (const unsigned char *)db.buf + a;
        if (buf_put(&out, "\"", 1) < 0 || json_escape(&out, v, z - a) < 0
            || buf_put(&out, "\"", 1) < 0)
            goto done;
        if (out.len > INT32_MAX) {
            PyErr_SetString(PyExc_OverflowError, "json_strings: more than 2 GiB of text; write fewer rows at once");
            goto done;
        }
        o[k + 1] = (int32_t)out.len;
    }
    offs.len = (length + 1) * sizeof(int32_t);
    res = Py_BuildValue("(NN)", buf_take(&offs), buf_take(&out));
done:
    buf_free(&out);
    buf_free(&offs);
    PyBuffer_Release(&ob);
    PyBuffer_Release(&db);
    return res;
}

/* ---- oslo.log headers ------------------------------------------------------------------------------------
 * The same language as layouts.py's "oslo" and "oslo_prefixed" regexes (re.match, so anchored at the start):
 *   [origin: \S+\.log\S* ' ']  \d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)? ' ' \d+ ' ' LEVEL ' ' \S+ ' '
 *   (?:\[(?!instance: )[^\]]*\] ?)?  .*
 * Returns (origin, ts, pid, level, comp, ctx, msg) like the regex's groups(), False when an ASCII line does not
 * match, None for non-ASCII lines (the caller then uses the regex, whose \d and \S are Unicode-aware).
 */
static const char *LEVELS[] = {"DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL", "TRACE", "AUDIT", NULL};

static int is_space(unsigned char c) { return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f); }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int digits(const unsigned char *s, Py_ssize_t n, Py_ssize_t i, int count) {
    for (int k = 0; k < count; k++)
        if (i + k >= n || !is_digit(s[i + k])) return 0;
    return 1;
}

/* Header fields of an oslo line as offsets into it; the origin is s[0:origin_end] (empty unless prefixed), the
 * context s[x0:x1] (x0 < 0: no context bracket), the message s[m0:n]. */
typedef struct {
    Py_ssize_t origin_end, ts0, ts1, pid0, pid1, lv0, lv1, c0, c1, x0, x1, m0;
} Oslo;

static int oslo_match(const unsigned char *s, Py_ssize_t n, int prefixed, Oslo *f) {
    Py_ssize_t i = 0;
    f->origin_end = 0;
    if (prefixed) {
        Py_ssize_t e = 0;
        while (e < n && !is_space(s[e])) e++;
        if (e >= n || s[e] != ' ') return 0;
        int found = 0;
        for (Py_ssize_t k = 1; k + 4 <= e; k++)
            if (memcmp(s + k, ".log", 4) == 0) { found = 1; break; }
        if (!found) return 0;
        f->origin_end = e;
        i = e + 1;
    }
    f->ts0 = i;
    if (!(digits(s, n, i, 4) && i + 4 < n && s[i + 4] == '-' && digits(s, n, i + 5, 2) && i + 7 < n && s[i + 7] == '-'
          && digits(s, n, i + 8, 2) && i + 10 < n && (s[i + 10] == ' ' || s[i + 10] == 'T') && digits(s, n, i + 11, 2)
          && i + 13 < n && s[i + 13] == ':' && digits(s, n, i + 14, 2) && i + 16 < n && s[i + 16] == ':'
          && digits(s, n, i + 17, 2)))
        return 0;
    i += 19;
    if (i + 1 < n && (s[i] == '.' || s[i] == ',') && is_digit(s[i + 1])) {
        i += 1;
        while (i < n && is_digit(s[i])) i++;
    }
    f->ts1 = i;
    if (i >= n || s[i] != ' ') return 0;
    f->pid0 = ++i;
    while (i < n && is_digit(s[i])) i++;
    if (i == f->pid0 || i >= n || s[i] != ' ') return 0;
    f->pid1 = i++;
    f->lv0 = i;
    f->lv1 = -1;
    for (int k = 0; LEVELS[k]; k++) {
        Py_ssize_t L = (Py_ssize_t)strlen(LEVELS[k]);
        if (i + L < n && memcmp(s + i, LEVELS[k], L) == 0 && s[i + L] == ' ') { f->lv1 = i + L; break; }
    }
    if (f->lv1 < 0) return 0;
    i = f->lv1 + 1;
    f->c0 = i;
    while (i < n && !is_space(s[i])) i++;
    if (i == f->c0 || i >= n || s[i] != ' ') return 0;
    f->c1 = i++;
    f->x0 = f->x1 = -1;
    if (i < n && s[i] == '[' && !(n - i - 1 >= 10 && memcmp(s + i + 1, "instance: ", 10) == 0)) {
        const unsigned char *close = memchr(s + i + 1, ']', n - i - 1);
        if (close != NULL) {
            f->x0 = i + 1;
            f->x1 = close - s;
            i = f->x1 + 1;
            if (i < n && s[i] == ' ') i++;
        }
    }
    f->m0 = i;
    return 1;
}

static PyObject *parse_oslo(PyObject *self, PyObject *args) {
    PyObject *line;
    int prefixed;
    Oslo f;
    if (!PyArg_ParseTuple(args, "Up", &line, &prefixed)) return NULL;
    if (!PyUnicode_IS_ASCII(line)) Py_RETURN_NONE;
    const unsigned char *s = (const unsigned char *)PyUnicode_DATA(line);
    Py_ssize_t n = PyUnicode_GET_LENGTH(line);
    if (!oslo_match(s, n, prefixed, &f)) Py_RETURN_FALSE;
    const char *b = (const char *)s;
    PyObject *ctx;
    if (f.x0 >= 0) ctx = PyUnicode_FromStringAndSize(b + f.x0, f.x1 - f.x0);
    else { ctx = Py_None; Py_INCREF(ctx); }
    return Py_BuildValue("(s#s#s#s#s#Ns#)", b, f.origin_end, b + f.ts0, f.ts1 - f.ts0, b + f.pid0, f.pid1 - f.pid0,
                         b + f.lv0, f.lv1 - f.lv0, b + f.c0, f.c1 - f.c0, ctx, b + f.m0, n - f.m0);
}

/* ---- the record builder ----------------------------------------------------------------------------------
 * Rows of the parser's record table, kept as Arrow column buffers (int32 line numbers; int32 offsets + UTF-8 data
 * per string column) so no per-record Python object is made. The parser appends the rare rows it decides itself
 * (tracebacks, other layouts, non-ASCII lines) with append(); scan() takes every plain oslo line in one call.
 * An empty string stands for "none"; the parser turns empties into nulls per column.
 */
enum { C_TS, C_PID, C_LEVEL, C_COMP, C_ORIGIN, C_CTX, C_INST, C_MSG, C_TPL, C_LAYOUT, C_RAW, NSTR };
static const char TRACEBACK[] = "Traceback (most recent call last)";

typedef struct {
    PyObject_HEAD
    Py_ssize_t rows;
    Buf line_no;
    Buf data[NSTR];
    Buf offs[NSTR];
} Builder;

static int builder_reset(Builder *b) {
    static const int32_t zero = 0;
    buf_free(&b->line_no);
    for (int c = 0; c < NSTR; c++) {
        buf_free(&b->data[c]);
        buf_free(&b->offs[c]);
        if (buf_put(&b->offs[c], &zero, sizeof zero) < 0) return -1;
    }
    b->rows = 0;
    return 0;
}

static int builder_init(Builder *b, PyObject *args, PyObject *kw) { return builder_reset(b); }

static void builder_dealloc(Builder *b) {
    buf_free(&b->line_no);
    for (int c = 0; c < NSTR; c++) { buf_free(&b->data[c]); buf_free(&b->offs[c]); }
    Py_TYPE(b)->tp_free((PyObject *)b);
}

static Py_ssize_t builder_len(Builder *b) { return b->rows; }

/* Close the value just written to column c's data. */
static int col_end(Builder *b, int c) {
    if (b->data[c].len > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "more than 2 GiB of text in one chunk; lower parse.chunk_bytes");
        return -1;
    }
    int32_t end = (int32_t)b->data[c].len;
    return buf_put(&b->offs[c], &end, sizeof end);
}

static int col_put(Builder *b, int c, const void *s, Py_ssize_t n) {
    return buf_put(&b->data[c], s, n) < 0 ? -1 : col_end(b, c);
}

static int put_line_no(Builder *b, long v) {
    int32_t x = (int32_t)v;
    return buf_put(&b->line_no, &x, sizeof x);
}

/* append((line_no, ts, pid, level, comp, origin, ctx, inst, msg, template, layout, raw)); str or None each. */
static PyObject *builder_append(Builder *b, PyObject *row) {
    if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != NSTR + 1) {
        PyErr_SetString(PyExc_TypeError, "append expects a tuple of 12 fields");
        return NULL;
    }
    long ln = PyLong_AsLong(PyTuple_GET_ITEM(row, 0));
    if (ln == -1 && PyErr_Occurred()) return NULL;
    const char *p[NSTR];
    Py_ssize_t n[NSTR];
    for (int c = 0; c < NSTR; c++) {
        PyObject *v = PyTuple_GET_ITEM(row, c + 1);
        if (v == Py_None) { p[c] = ""; n[c] = 0; continue; }
        if (!PyUnicode_Check(v)) {
            PyErr_SetString(PyExc_TypeError, "append: fields must be str or None");
            return NULL;
        }
        if ((p[c] = PyUnicode_AsUTF8AndSize(v, &n[c])) == NULL) return NULL;
    }
    if (put_line_no(b, ln) < 0) return NULL;
    for (int c = 0; c < NSTR; c++)
        if (col_put(b, c, p[c], n[c]) < 0) return NULL;
    b->rows++;
    Py_RETURN_NONE;
}

static const unsigned char *find(const unsigned char *h, Py_ssize_t n, const char *needle, Py_ssize_t k) {
    const unsigned char *end = h + n;
    while (h + k <= end) {
        const unsigned char *q = memchr(h, needle[0], end - h);
        if (q == NULL || q + k > end) return NULL;
        if (memcmp(q, needle, k) == 0) return q;
        h = q + 1;
    }
    return NULL;
}

static int same(const unsigned char *a, Py_ssize_t an, const char *b, Py_ssize_t bn) {
    return an == bn && memcmp(a, b, an) == 0;
}

/* scan(lines, start, first_line_no, prefixed, max_chars, layout, prev) -> (stop, prev)
 *
 * Appends a record for each line from lines[start] on that is a plain oslo record: ASCII, at most max_chars long,
 * no trailing CR, an oslo header, and not a traceback line repeating the previous record's header. Stops at the
 * first other line (the parser decides that one) and returns its index with the (ts, pid, comp) of the last record
 * (prev, as given, when none was added). The caller's state must be "outside a traceback, no pending blank lines". */
static PyObject *builder_scan(Builder *b, PyObject *args) {
    PyObject *lines, *layout, *prev;
    Py_ssize_t start, max_chars, lay_n;
    long first;
    int prefixed;
    if (!PyArg_ParseTuple(args, "O!nlpnUO", &PyList_Type, &lines, &start, &first, &prefixed, &max_chars, &layout,
                          &prev))
        return NULL;
    const char *lay = PyUnicode_AsUTF8AndSize(layout, &lay_n);
    if (lay == NULL) return NULL;
    const char *pv[3] = {NULL, NULL, NULL};
    Py_ssize_t pn[3] = {0, 0, 0};
    int have_prev = 0;
    if (prev != Py_None) {
        if (!PyTuple_Check(prev) || PyTuple_GET_SIZE(prev) != 3) {
            PyErr_SetString(PyExc_TypeError, "scan: prev must be None or (ts, pid, comp)");
            return NULL;
        }
        have_prev = 1;
        for (int k = 0; k < 3; k++) {
            PyObject *v = PyTuple_GET_ITEM(prev, k);
            if (v == Py_None) { have_prev = 0; break; }  /* the parser's None never equals a header field */
            if (!PyUnicode_Check(v) || (pv[k] = PyUnicode_AsUTF8AndSize(v, &pn[k])) == NULL) {
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "scan: prev fields must be str");
                return NULL;
            }
        }
    }
    Py_ssize_t nl = PyList_GET_SIZE(lines), i = start < 0 ? 0 : start;
    const unsigned char *ls = NULL;
    Oslo lf;
    for (; i < nl; i++) {
        PyObject *line = PyList_GET_ITEM(lines, i);
        if (!PyUnicode_Check(line) || !PyUnicode_IS_ASCII(line)) break;
        const unsigned char *s = (const unsigned char *)PyUnicode_DATA(line);
        Py_ssize_t n = PyUnicode_GET_LENGTH(line);
        Oslo f;
        if (n == 0 || n > max_chars || s[n - 1] == '\r' || !oslo_match(s, n, prefixed, &f)) break;
        const unsigned char *m = s + f.m0;
        Py_ssize_t mn = n - f.m0;
        if (have_prev && same(s + f.ts0, f.ts1 - f.ts0, pv[0], pn[0]) && same(s + f.pid0, f.pid1 - f.pid0, pv[1], pn[1])
            && same(s + f.c0, f.c1 - f.c0, pv[2], pn[2])
            && ((f.lv1 - f.lv0 == 5 && memcmp(s + f.lv0, "TRACE", 5) == 0)
                || find(m, mn < 120 ? mn : 120, TRACEBACK, sizeof TRACEBACK - 1) != NULL))
            break;  /* oslo repeats the header on each traceback line: the parser joins it to the record */
        /* [instance: X]: msg[11:msg.find("]")] when the message starts with it (Python's slice, -1 included),
         * else between the first "[instance: " and the "]" after it */
        Py_ssize_t i0 = 0, i1 = 0;
        if (mn >= 11 && memcmp(m, "[instance: ", 11) == 0) {
            const unsigned char *close = memchr(m, ']', mn);
            Py_ssize_t e = close ? close - m : mn - 1;
            if (e > 11) { i0 = 11; i1 = e; }
        } else {
            const unsigned char *k = find(m, mn, "[instance: ", 11);
            if (k != NULL) {
                const unsigned char *close = memchr(k, ']', mn - (k - m));
                if (close != NULL) { i0 = k - m + 11; i1 = close - m; }
            }
        }
        if (put_line_no(b, first + i) < 0 || col_put(b, C_TS, s + f.ts0, f.ts1 - f.ts0) < 0
            || col_put(b, C_PID, s + f.pid0, f.pid1 - f.pid0) < 0 || col_put(b, C_LEVEL, s + f.lv0, f.lv1 - f.lv0) < 0
            || col_put(b, C_COMP, s + f.c0, f.c1 - f.c0) < 0 || col_put(b, C_ORIGIN, s, f.origin_end) < 0
            || col_put(b, C_CTX, s + (f.x0 >= 0 ? f.x0 : 0), f.x0 >= 0 ? f.x1 - f.x0 : 0) < 0
            || col_put(b, C_INST, m + i0, i1 - i0) < 0 || col_put(b, C_MSG, m, mn) < 0)
            return NULL;
        Buf *t = &b->data[C_TPL];
        if (buf_reserve(t, 3 * mn + 1) < 0) return NULL;
        t->len += write_template(m, mn, t->p + t->len, NULL, NULL);
        if (col_end(b, C_TPL) < 0 || col_put(b, C_LAYOUT, lay, lay_n) < 0 || col_put(b, C_RAW, s, n) < 0) return NULL;
        b->rows++;
        ls = s;
        lf = f;
        have_prev = 1;
        pv[0] = (const char *)s + f.ts0; pn[0] = f.ts1 - f.ts0;
        pv[1] = (const char *)s + f.pid0; pn[1] = f.pid1 - f.pid0;
        pv[2] = (const char *)s + f.c0; pn[2] = f.c1 - f.c0;
    }
    if (ls == NULL) return Py_BuildValue("(nO)", i, prev);
    const char *c = (const char *)ls;
    return Py_BuildValue("(n(s#s#s#))", i, c + lf.ts0, lf.ts1 - lf.ts0, c + lf.pid0, lf.pid1 - lf.pid0, c + lf.c0,
                         lf.c1 - lf.c0);
}

/* finish() -> (rows, line_no, ((offsets, data) per string column)) as bytes; the builder starts over. */
static PyObject *builder_finish(Builder *b, PyObject *unused) {
    PyObject *cols = PyTuple_New(NSTR);
    if (cols == NULL) return NULL;
    for (int c = 0; c < NSTR; c++) {
        PyObject *off = buf_take(&b->offs[c]), *data = off ? buf_take(&b->data[c]) : NULL;
        if (data == NULL) { Py_XDECREF(off); Py_DECREF(cols); return NULL; }
        PyTuple_SET_ITEM(cols, c, PyTuple_Pack(2, off, data));
        Py_DECREF(off);
        Py_DECREF(data);
        if (PyTuple_GET_ITEM(cols, c) == NULL) { Py_DECREF(cols); return NULL; }
    }
    PyObject *line_no = buf_take(&b->line_no);
    if (line_no == NULL) { Py_DECREF(cols); return NULL; }
    PyObject *res = Py_BuildValue("(nNN)", b->rows, line_no, cols);
    if (res != NULL && builder_reset(b) < 0) Py_CLEAR(res);
    return res;
}

static PyMethodDef builder_methods[] = {
    {"append", (PyCFunction)builder_append, METH_O, "Add one row: (line_no, ts, pid, level, comp, origin, ctx, "
                                                    "inst, msg, template, layout, raw), str or None each."},
    {"scan", (PyCFunction)builder_scan, METH_VARARGS, "Add the plain oslo records from lines[start] on."},
    {"finish", (PyCFunction)builder_finish, METH_NOARGS, "The columns as buffers; the builder starts over."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods builder_seq = {.sq_length = (lenfunc)builder_len};

static PyTypeObject BuilderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "openstack_rca.parse._speedups.RowBuilder",
    .tp_basicsize = sizeof(Builder),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Record rows as Arrow column buffers.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)builder_init,
    .tp_dealloc = (destructor)builder_dealloc,
    .tp_methods = builder_methods,
    .tp_as_sequence = &builder_seq,
};

static PyObject *template_of(PyObject *self, PyObject *arg) { return scan(arg, 0); }
static PyObject *mask(PyObject *self, PyObject *arg) { return scan(arg, 1); }

static PyMethodDef methods[] = {
    {"template_of", template_of, METH_O, "Template of an ASCII message, or None for non-ASCII input."},
    {"mask", mask, METH_O, "(template, params) of an ASCII message, or None for non-ASCII input."},
    {"parse_oslo", parse_oslo, METH_VARARGS, "oslo header fields of an ASCII line; False if no match, None if non-ASCII."},
    {"params_json", params_json, METH_O, "json.dumps(mask(message)[1]) for ASCII text, else None."},
    {"json_strings", json_strings, METH_VARARGS, "An Arrow string array's values as quoted JSON strings."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", "C hot paths of the parser.", -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) {
    init_tables();
    if (PyType_Ready(&BuilderType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&BuilderType);
    if (PyModule_AddObject(m, "RowBuilder", (PyObject *)&BuilderType) < 0) {
        Py_DECREF(&BuilderType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
