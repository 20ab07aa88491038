/*
 * The masking hot path in C: the same language as openstack_rca.parse.masking.VARIABLE, for ASCII text.
 *
 *   (?<![\w.+/-])( [A-Za-z_.+-]*+ \d [\w.+/-]*+ (?: , <same> )*+  |  / PATH  |  https?:// PATH )
 *   PATH = [^\s()'",\]]*+
 *
 * Every quantifier is possessive and no alternative can match empty, so a single left-to-right scan with no
 * backtracking reproduces the regex exactly. Non-ASCII input returns None and the caller uses the regex, which
 * has the Unicode definitions of \w, \d and \s. tests/test_speedups.py holds the two to the same output.
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

static PyObject *scan(PyObject *arg, int want_params) {
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "mask expects str");
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(arg)) Py_RETURN_NONE;
    const unsigned char *s = (const unsigned char *)PyUnicode_DATA(arg);
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg);
    /* a template is never longer than 3x its message ("1" -> "<*>") */
    char stackbuf[4096];
    char *out = (3 * n + 1 <= (Py_ssize_t)sizeof(stackbuf)) ? stackbuf : PyMem_Malloc(3 * n + 1);
    if (out == NULL) return PyErr_NoMemory();
    PyObject *params = NULL;
    if (want_params && (params = PyList_New(0)) == NULL) goto fail;
    Py_ssize_t o = 0, i = 0, lit = 0;
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
            if (p == NULL || PyList_Append(params, p) < 0) { Py_XDECREF(p); goto fail; }
            Py_DECREF(p);
        }
        i = lit = j;
    }
    memcpy(out + o, s + lit, n - lit);
    o += n - lit;
    PyObject *tpl = PyUnicode_FromStringAndSize(out, o);
    if (out != stackbuf) PyMem_Free(out);
    if (tpl == NULL) { Py_XDECREF(params); return NULL; }
    if (!params) return tpl;
    PyObject *res = PyTuple_Pack(2, tpl, params);
    Py_DECREF(tpl);
    Py_DECREF(params);
    return res;
fail:
    if (out != stackbuf) PyMem_Free(out);
    Py_XDECREF(params);
    return NULL;
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

static PyObject *parse_oslo(PyObject *self, PyObject *args) {
    PyObject *line;
    int prefixed;
    if (!PyArg_ParseTuple(args, "Up", &line, &prefixed)) return NULL;
    if (!PyUnicode_IS_ASCII(line)) Py_RETURN_NONE;
    const unsigned char *s = (const unsigned char *)PyUnicode_DATA(line);
    Py_ssize_t n = PyUnicode_GET_LENGTH(line), i = 0, origin_end = 0;
    if (prefixed) {
        Py_ssize_t e = 0;
        while (e < n && !is_space(s[e])) e++;
        if (e >= n || s[e] != ' ') Py_RETURN_FALSE;
        int found = 0;
        for (Py_ssize_t k = 1; k + 4 <= e; k++)
            if (memcmp(s + k, ".log", 4) == 0) { found = 1; break; }
        if (!found) Py_RETURN_FALSE;
        origin_end = e;
        i = e + 1;
    }
    Py_ssize_t ts0 = i;
    if (!(digits(s, n, i, 4) && i + 4 < n && s[i + 4] == '-' && digits(s, n, i + 5, 2) && i + 7 < n && s[i + 7] == '-'
          && digits(s, n, i + 8, 2) && i + 10 < n && (s[i + 10] == ' ' || s[i + 10] == 'T') && digits(s, n, i + 11, 2)
          && i + 13 < n && s[i + 13] == ':' && digits(s, n, i + 14, 2) && i + 16 < n && s[i + 16] == ':'
          && digits(s, n, i + 17, 2)))
        Py_RETURN_FALSE;
    i += 19;
    if (i + 1 < n && (s[i] == '.' || s[i] == ',') && is_digit(s[i + 1])) {
        i += 1;
        while (i < n && is_digit(s[i])) i++;
    }
    Py_ssize_t ts1 = i;
    if (i >= n || s[i] != ' ') Py_RETURN_FALSE;
    Py_ssize_t pid0 = ++i;
    while (i < n && is_digit(s[i])) i++;
    if (i == pid0 || i >= n || s[i] != ' ') Py_RETURN_FALSE;
    Py_ssize_t pid1 = i++;
    Py_ssize_t lv0 = i, lv1 = -1;
    for (int k = 0; LEVELS[k]; k++) {
        Py_ssize_t L = (Py_ssize_t)strlen(LEVELS[k]);
        if (i + L < n && memcmp(s + i, LEVELS[k], L) == 0 && s[i + L] == ' ') { lv1 = i + L; break; }
    }
    if (lv1 < 0) Py_RETURN_FALSE;
    i = lv1 + 1;
    Py_ssize_t c0 = i;
    while (i < n && !is_space(s[i])) i++;
    if (i == c0 || i >= n || s[i] != ' ') Py_RETURN_FALSE;
    Py_ssize_t c1 = i++;
    Py_ssize_t x0 = -1, x1 = -1;
    if (i < n && s[i] == '[' && !(n - i - 1 >= 10 && memcmp(s + i + 1, "instance: ", 10) == 0)) {
        const unsigned char *close = memchr(s + i + 1, ']', n - i - 1);
        if (close != NULL) {
            x0 = i + 1;
            x1 = close - s;
            i = x1 + 1;
            if (i < n && s[i] == ' ') i++;
        }
    }
    const char *b = (const char *)s;
    PyObject *ctx;
    if (x0 >= 0) ctx = PyUnicode_FromStringAndSize(b + x0, x1 - x0);
    else { ctx = Py_None; Py_INCREF(ctx); }
    PyObject *res = Py_BuildValue("(s#s#s#s#s#Ns#)", b, origin_end, b + ts0, ts1 - ts0, b + pid0, pid1 - pid0,
                                  b + lv0, lv1 - lv0, b + c0, c1 - c0, ctx, b + i, n - i);
    return res;
}

static PyObject *template_of(PyObject *self, PyObject *arg) { return scan(arg, 0); }
static PyObject *mask(PyObject *self, PyObject *arg) { return scan(arg, 1); }

static PyMethodDef methods[] = {
    {"template_of", template_of, METH_O, "Template of an ASCII message, or None for non-ASCII input."},
    {"mask", mask, METH_O, "(template, params) of an ASCII message, or None for non-ASCII input."},
    {"parse_oslo", parse_oslo, METH_VARARGS, "oslo header fields of an ASCII line; False if no match, None if non-ASCII."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", "C masking hot path.", -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) {
    init_tables();
    return PyModule_Create(&module);
}
