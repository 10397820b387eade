/*
 * asyncdyn._speedups: DynamoDB JSON -> Python values, in C (and the common shapes of items
 * the other way, see Encoder at the end).
 *
 * The compiled twin of marshal._build's decoder. It walks what orjson.loads already built
 * (dicts, lists, strs) and never parses JSON itself. The pure-Python decoder in marshal.py is
 * the reference: every rule here mirrors one there, and both run the same tests. Where the
 * input is not what JSON produces (a map value that is not an exact dict, a list value that
 * is not an exact list), the pure function is called so that both paths agree even then.
 *
 * Why C and not more Python: a pure-Python decoder costs about 1,500 instructions per
 * attribute value (a dict lookup for the tag, a call per value); here a value is a switch on
 * its tag's first characters and one object built (benchmarks/RESULTS.md, section 14).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

enum { MODE_AUTO = 0, MODE_DECIMAL = 1, MODE_FLOAT = 2 };

enum {
    TAG_UNKNOWN = 0, TAG_S, TAG_N, TAG_B, TAG_M, TAG_L,
    TAG_BOOL, TAG_NULL, TAG_SS, TAG_NS, TAG_BS
};

typedef struct {
    PyObject_HEAD
    int mode;
    PyObject *decimal;     /* decimal.Decimal */
    PyObject *b64decode;   /* binascii.a2b_base64, as marshal uses */
    PyObject *map_pure;    /* marshal's map_ for this mode: non-dict "M" payloads */
    PyObject *list_pure;   /* marshal's list_ for this mode: non-list "L" payloads */
} DecoderObject;

/* An item's dict made at its final size: growing one attribute at a time from the default 8
 * slots means two or three resizes for a 20-attribute item. _PyDict_NewPresized is exported
 * but private; past 3.12 the public PyDict_New is used. */
#if PY_VERSION_HEX < 0x030D0000
#define new_dict(n) _PyDict_NewPresized(n)
#else
#define new_dict(n) PyDict_New()
#endif

static PyObject *str_S;
static PyObject *str_N;

static PyObject *decode_value(DecoderObject *self, PyObject *w);

/* The tag of a one-key wire value, from its length and characters (orjson's key strings
 * are not interned, so pointer comparison would miss). */
static int
tag_of(PyObject *tag)
{
    if (!PyUnicode_Check(tag) || PyUnicode_KIND(tag) != PyUnicode_1BYTE_KIND) {
        return TAG_UNKNOWN;
    }
    const char *s = (const char *)PyUnicode_1BYTE_DATA(tag);
    switch (PyUnicode_GET_LENGTH(tag)) {
    case 1:
        switch (s[0]) {
        case 'S': return TAG_S;
        case 'N': return TAG_N;
        case 'B': return TAG_B;
        case 'M': return TAG_M;
        case 'L': return TAG_L;
        }
        return TAG_UNKNOWN;
    case 2:
        if (s[1] != 'S') return TAG_UNKNOWN;
        switch (s[0]) {
        case 'S': return TAG_SS;
        case 'N': return TAG_NS;
        case 'B': return TAG_BS;
        }
        return TAG_UNKNOWN;
    case 4:
        if (memcmp(s, "BOOL", 4) == 0) return TAG_BOOL;
        if (memcmp(s, "NULL", 4) == 0) return TAG_NULL;
        return TAG_UNKNOWN;
    }
    return TAG_UNKNOWN;
}

/* int for plain digits, Decimal when there is a point or an exponent (marshal._auto_number).
 * Up to 18 digits are read here; longer ones, and anything int() accepts beyond plain
 * digits (a sign "+", underscores, spaces), go through int()'s own parser. */
static PyObject *
auto_number(DecoderObject *self, PyObject *x)
{
    if (!PyUnicode_Check(x)) {
        PyErr_Format(PyExc_TypeError, "a number must be a string, not %.100s",
                     Py_TYPE(x)->tp_name);
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(x);
    if (PyUnicode_KIND(x) == PyUnicode_1BYTE_KIND) {
        const unsigned char *s = PyUnicode_1BYTE_DATA(x);
        if (memchr(s, '.', n) || memchr(s, 'e', n) || memchr(s, 'E', n)) {
            return PyObject_CallOneArg(self->decimal, x);
        }
        Py_ssize_t i = (n > 0 && s[0] == '-') ? 1 : 0;
        if (n - i >= 1 && n - i <= 18) {
            long long v = 0;
            Py_ssize_t j = i;
            for (; j < n; j++) {
                unsigned d = (unsigned)s[j] - '0';
                if (d > 9) break;
                v = v * 10 + d;
            }
            if (j == n) {
                return PyLong_FromLongLong(i ? -v : v);
            }
        }
        return PyLong_FromUnicodeObject(x, 10);
    }
    if (PyUnicode_FindChar(x, '.', 0, n, 1) >= 0 || PyUnicode_FindChar(x, 'e', 0, n, 1) >= 0
        || PyUnicode_FindChar(x, 'E', 0, n, 1) >= 0) {
        return PyObject_CallOneArg(self->decimal, x);
    }
    return PyLong_FromUnicodeObject(x, 10);
}

static PyObject *
number(DecoderObject *self, PyObject *x)
{
    switch (self->mode) {
    case MODE_AUTO:
        return auto_number(self, x);
    case MODE_DECIMAL:
        return PyObject_CallOneArg(self->decimal, x);
    default:
        if (PyUnicode_CheckExact(x)) {
            return PyFloat_FromString(x);
        }
        return PyObject_CallOneArg((PyObject *)&PyFloat_Type, x);
    }
}

static PyObject *
decode_map(DecoderObject *self, PyObject *m)
{
    if (Py_EnterRecursiveCall(" while decoding a DynamoDB map")) {
        return NULL;
    }
    PyObject *out = new_dict(PyDict_GET_SIZE(m));
    if (out != NULL) {
        Py_ssize_t pos = 0;
        PyObject *k, *w;
        while (PyDict_Next(m, &pos, &k, &w)) {
            PyObject *v = decode_value(self, w);
            if (v == NULL || PyDict_SetItem(out, k, v) < 0) {
                Py_XDECREF(v);
                Py_CLEAR(out);
                break;
            }
            Py_DECREF(v);
        }
    }
    Py_LeaveRecursiveCall();
    return out;
}

static PyObject *
decode_list(DecoderObject *self, PyObject *xs)
{
    if (Py_EnterRecursiveCall(" while decoding a DynamoDB list")) {
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out != NULL) {
        /* The size is read on every turn: decoding may run Python code (Decimal). The list
         * grows by appending, so a failure never leaves a half-filled list around. */
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(xs); i++) {
            PyObject *w = PyList_GET_ITEM(xs, i);
            Py_INCREF(w);
            PyObject *v = decode_value(self, w);
            Py_DECREF(w);
            if (v == NULL || PyList_Append(out, v) < 0) {
                Py_XDECREF(v);
                Py_CLEAR(out);
                break;
            }
            Py_DECREF(v);
        }
    }
    Py_LeaveRecursiveCall();
    return out;
}

/* set(map(f, xs)), with f a number reader (f == NULL) or a Python callable. */
static PyObject *
mapped_set(DecoderObject *self, PyObject *xs, PyObject *f)
{
    PyObject *it = PyObject_GetIter(xs);
    if (it == NULL) {
        return NULL;
    }
    PyObject *out = PySet_New(NULL);
    PyObject *x;
    while (out != NULL && (x = PyIter_Next(it)) != NULL) {
        PyObject *v = f == NULL ? number(self, x) : PyObject_CallOneArg(f, x);
        Py_DECREF(x);
        if (v == NULL || PySet_Add(out, v) < 0) {
            Py_CLEAR(out);
        }
        Py_XDECREF(v);
    }
    Py_DECREF(it);
    if (out != NULL && PyErr_Occurred()) {
        Py_CLEAR(out);
    }
    return out;
}

/* One wire value's payload by its tag: marshal._build's ``handlers``. */
static PyObject *
decode_tagged(DecoderObject *self, PyObject *tag, PyObject *x)
{
    switch (tag_of(tag)) {
    case TAG_S:
    case TAG_BOOL:
        return Py_NewRef(x);
    case TAG_N:
        return number(self, x);
    case TAG_M:
        if (PyDict_CheckExact(x)) {
            return decode_map(self, x);
        }
        return PyObject_CallOneArg(self->map_pure, x);
    case TAG_L:
        if (PyList_CheckExact(x)) {
            return decode_list(self, x);
        }
        return PyObject_CallOneArg(self->list_pure, x);
    case TAG_NULL:
        Py_RETURN_NONE;
    case TAG_B:
        return PyObject_CallOneArg(self->b64decode, x);
    case TAG_SS:
        return PySet_New(x);
    case TAG_NS:
        return mapped_set(self, x, NULL);
    case TAG_BS:
        return mapped_set(self, x, self->b64decode);
    }
    /* Like the dispatch table's lookup in marshal. */
    PyErr_SetObject(PyExc_KeyError, tag);
    return NULL;
}

/* One attribute value, as marshal's map_/list_ read it: "S" or "N" when present and not
 * null (trusting the server to send one tag), otherwise exactly one tag. */
static PyObject *
decode_value(DecoderObject *self, PyObject *w)
{
    if (!PyDict_Check(w)) {
        PyErr_Format(PyExc_TypeError, "a DynamoDB attribute value must be an object, not %.100s",
                     Py_TYPE(w)->tp_name);
        return NULL;
    }
    if (PyDict_GET_SIZE(w) == 1) {
        Py_ssize_t pos = 0;
        PyObject *tag, *x;
        PyDict_Next(w, &pos, &tag, &x);
        return decode_tagged(self, tag, x);
    }
    PyObject *x = PyDict_GetItemWithError(w, str_S);
    if (x != NULL && x != Py_None) {
        return Py_NewRef(x);
    }
    if (x == NULL && PyErr_Occurred()) {
        return NULL;
    }
    x = PyDict_GetItemWithError(w, str_N);
    if (x != NULL && x != Py_None) {
        return number(self, x);
    }
    if (x == NULL && PyErr_Occurred()) {
        return NULL;
    }
    PyErr_Format(PyExc_ValueError,
                 "a DynamoDB attribute value holds exactly one type tag, not %zd",
                 PyDict_GET_SIZE(w));
    return NULL;
}

/* -- the type ------------------------------------------------------------------------- */

static int
Decoder_init(DecoderObject *self, PyObject *args, PyObject *kwds)
{
    int mode;
    PyObject *decimal, *b64decode, *map_pure, *list_pure;
    static char *kwlist[] = {"mode", "decimal", "b64decode", "map_pure", "list_pure", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iOOOO:Decoder", kwlist, &mode, &decimal,
                                     &b64decode, &map_pure, &list_pure)) {
        return -1;
    }
    if (mode < MODE_AUTO || mode > MODE_FLOAT) {
        PyErr_SetString(PyExc_ValueError, "mode must be 0 (auto), 1 (decimal) or 2 (float)");
        return -1;
    }
    self->mode = mode;
    Py_XSETREF(self->decimal, Py_NewRef(decimal));
    Py_XSETREF(self->b64decode, Py_NewRef(b64decode));
    Py_XSETREF(self->map_pure, Py_NewRef(map_pure));
    Py_XSETREF(self->list_pure, Py_NewRef(list_pure));
    return 0;
}

static int
Decoder_traverse(DecoderObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->decimal);
    Py_VISIT(self->b64decode);
    Py_VISIT(self->map_pure);
    Py_VISIT(self->list_pure);
    return 0;
}

static int
Decoder_clear(DecoderObject *self)
{
    Py_CLEAR(self->decimal);
    Py_CLEAR(self->b64decode);
    Py_CLEAR(self->map_pure);
    Py_CLEAR(self->list_pure);
    return 0;
}

static void
Decoder_dealloc(DecoderObject *self)
{
    PyObject_GC_UnTrack(self);
    Decoder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
ready(DecoderObject *self)
{
    if (self->decimal == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Decoder.__init__ was not called");
        return 0;
    }
    return 1;
}

static PyObject *
Decoder_item(DecoderObject *self, PyObject *wire)
{
    if (!ready(self)) {
        return NULL;
    }
    if (PyDict_CheckExact(wire)) {
        return decode_map(self, wire);
    }
    return PyObject_CallOneArg(self->map_pure, wire);
}

static PyObject *
Decoder_items(DecoderObject *self, PyObject *wires)
{
    if (!ready(self)) {
        return NULL;
    }
    PyObject *it = PyObject_GetIter(wires);
    if (it == NULL) {
        return NULL;
    }
    PyObject *out = PyList_New(0);
    PyObject *wire;
    while (out != NULL && (wire = PyIter_Next(it)) != NULL) {
        PyObject *v = Decoder_item(self, wire);
        Py_DECREF(wire);
        if (v == NULL || PyList_Append(out, v) < 0) {
            Py_CLEAR(out);
        }
        Py_XDECREF(v);
    }
    Py_DECREF(it);
    if (out != NULL && PyErr_Occurred()) {
        Py_CLEAR(out);
    }
    return out;
}

static PyObject *
Decoder_value(DecoderObject *self, PyObject *wire)
{
    if (!ready(self)) {
        return NULL;
    }
    /* marshal's value(): exactly one tag, always. */
    if (!PyDict_Check(wire) || PyDict_GET_SIZE(wire) != 1) {
        if (PyDict_Check(wire)) {
            PyErr_Format(PyExc_ValueError,
                         "a DynamoDB attribute value holds exactly one type tag, not %zd",
                         PyDict_GET_SIZE(wire));
        } else {
            PyErr_Format(PyExc_TypeError,
                         "a DynamoDB attribute value must be an object, not %.100s",
                         Py_TYPE(wire)->tp_name);
        }
        return NULL;
    }
    return decode_value(self, wire);
}

static PyMethodDef Decoder_methods[] = {
    {"item", (PyCFunction)Decoder_item, METH_O, "Decode one item (name -> wire value)."},
    {"items", (PyCFunction)Decoder_items, METH_O, "Decode a page of items."},
    {"value", (PyCFunction)Decoder_value, METH_O, "Decode one wire value."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject DecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asyncdyn._speedups.Decoder",
    .tp_doc = PyDoc_STR("DynamoDB JSON (as orjson.loads returns it) -> Python values."),
    .tp_basicsize = sizeof(DecoderObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Decoder_init,
    .tp_dealloc = (destructor)Decoder_dealloc,
    .tp_traverse = (traverseproc)Decoder_traverse,
    .tp_clear = (inquiry)Decoder_clear,
    .tp_methods = Decoder_methods,
};


/* -- encoding: the common shapes of marshal._encode_item, or "not here" ---------------------
 *
 * Encoder.item(item) returns marshal._encode_item's (wire, size bound) for an item made of
 * plain dicts, lists, tuples, str, int, bool and None, and hands every other value to
 * marshal's own encoder for it (`slow(value, level)`: Decimal, float, bytes, sets,
 * subclasses). Whenever anything is off -- a refusal, a non-str key, a lone surrogate, a
 * name of the wrong length, nesting at the limit -- it returns None and marshal encodes the
 * item again in Python, so every error (and its attribute path) comes from one place.
 */

#define MAX_DEPTH 32
#define MAX_NAME_BYTES 65535

typedef struct {
    PyObject_HEAD
    PyObject *slow;   /* marshal's (value, level) -> (wire, size) for the other types */
} EncoderObject;

static PyObject *str_M, *str_L, *str_BOOL, *str_NULL;

static PyObject *enc_value(EncoderObject *self, PyObject *v, int level, Py_ssize_t *size);

/* UTF-8 length of a str, -1 with an error set for a lone surrogate. */
static Py_ssize_t
utf8_len(PyObject *s)
{
    if (PyUnicode_IS_ASCII(s)) {
        return PyUnicode_GET_LENGTH(s);
    }
    Py_ssize_t n;
    if (PyUnicode_AsUTF8AndSize(s, &n) == NULL) {
        return -1;
    }
    return n;
}

/* {tag: value}, stealing nothing. */
static PyObject *
tagged(PyObject *tag, PyObject *value)
{
    PyObject *out = PyDict_New();
    if (out != NULL && PyDict_SetItem(out, tag, value) < 0) {
        Py_CLEAR(out);
    }
    return out;
}

/* {tag: value}, stealing value. */
static PyObject *
tagged_steal(PyObject *tag, PyObject *value)
{
    if (value == NULL) {
        return NULL;
    }
    PyObject *out = tagged(tag, value);
    Py_DECREF(value);
    return out;
}

static PyObject *
enc_map(EncoderObject *self, PyObject *value, int level, Py_ssize_t *size)
{
    if (level >= MAX_DEPTH) {
        PyErr_SetString(PyExc_ValueError, "nesting at the limit");  /* marshal refuses it */
        return NULL;
    }
    if (Py_EnterRecursiveCall(" while encoding a map")) {
        return NULL;
    }
    Py_ssize_t total = 3, n = PyDict_GET_SIZE(value), pos = 0;
    PyObject *out = new_dict(n), *k, *v;
    while (out != NULL && PyDict_Next(value, &pos, &k, &v)) {
        Py_ssize_t vs, ks;
        if (!PyUnicode_CheckExact(k) || (ks = utf8_len(k)) < 0) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError, "map key is not a str");
            }
            Py_CLEAR(out);
            break;
        }
        Py_INCREF(v);
        PyObject *w = enc_value(self, v, level + 1, &vs);
        Py_DECREF(v);
        if (w == NULL || PyDict_SetItem(out, k, w) < 0) {
            Py_XDECREF(w);
            Py_CLEAR(out);
            break;
        }
        Py_DECREF(w);
        total += ks + vs + 1;
    }
    Py_LeaveRecursiveCall();
    if (out != NULL && PyDict_GET_SIZE(value) != n) {
        PyErr_SetString(PyExc_RuntimeError, "map changed size while encoding");
        Py_CLEAR(out);
    }
    *size = total;
    return tagged_steal(str_M, out);
}

static PyObject *
enc_list(EncoderObject *self, PyObject *value, int level, Py_ssize_t *size)
{
    if (level >= MAX_DEPTH) {
        PyErr_SetString(PyExc_ValueError, "nesting at the limit");
        return NULL;
    }
    if (Py_EnterRecursiveCall(" while encoding a list")) {
        return NULL;
    }
    PyObject *seq = PySequence_Fast(value, "not a sequence");  /* list or tuple: no copy */
    PyObject *out = NULL;
    Py_ssize_t total = 0;
    if (seq != NULL) {
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        total = 3 + n;
        out = PyList_New(n);
        for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
            Py_ssize_t vs;
            PyObject *w = enc_value(self, PySequence_Fast_GET_ITEM(seq, i), level + 1, &vs);
            if (w == NULL) {
                Py_CLEAR(out);
                break;
            }
            PyList_SET_ITEM(out, i, w);
            total += vs;
        }
        Py_DECREF(seq);
    }
    Py_LeaveRecursiveCall();
    *size = total;
    return tagged_steal(str_L, out);
}

static PyObject *
enc_value(EncoderObject *self, PyObject *v, int level, Py_ssize_t *size)
{
    PyTypeObject *t = Py_TYPE(v);
    if (t == &PyUnicode_Type) {
        Py_ssize_t n = utf8_len(v);
        if (n < 0) {
            return NULL;
        }
        *size = n;
        return tagged(str_S, v);
    }
    if (t == &PyLong_Type) {
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (!overflow && !(x == -1 && PyErr_Occurred())) {
            /* |x| < 2**63 < 10**38: always within DynamoDB's digits and range. */
            char buf[32];
            int len = snprintf(buf, sizeof buf, "%lld", x);
            *size = len / 2 + 2;
            return tagged_steal(str_N, PyUnicode_FromStringAndSize(buf, len));
        }
        PyErr_Clear();
        /* Larger ints: marshal's own rules (exponent form, range). */
    }
    else if (t == &PyBool_Type) {
        *size = 1;
        return tagged(str_BOOL, v);
    }
    else if (v == Py_None) {
        *size = 1;
        return tagged(str_NULL, Py_True);
    }
    else if (t == &PyDict_Type) {
        return enc_map(self, v, level, size);
    }
    else if (t == &PyList_Type || t == &PyTuple_Type) {
        return enc_list(self, v, level, size);
    }
    PyObject *lv = PyLong_FromLong(level);
    if (lv == NULL) {
        return NULL;
    }
    PyObject *args[2] = {v, lv};
    PyObject *done = PyObject_Vectorcall(self->slow, args, 2, NULL);
    Py_DECREF(lv);
    if (done == NULL) {
        return NULL;
    }
    if (!PyTuple_CheckExact(done) || PyTuple_GET_SIZE(done) != 2) {
        Py_DECREF(done);
        PyErr_SetString(PyExc_TypeError, "the slow encoder must return (wire, size)");
        return NULL;
    }
    Py_ssize_t n = PyLong_AsSsize_t(PyTuple_GET_ITEM(done, 1));
    if (n == -1 && PyErr_Occurred()) {
        Py_DECREF(done);
        return NULL;
    }
    *size = n;
    PyObject *w = Py_NewRef(PyTuple_GET_ITEM(done, 0));
    Py_DECREF(done);
    return w;
}

static PyObject *
Encoder_item(EncoderObject *self, PyObject *item)
{
    if (self->slow == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Encoder.__init__ was not called");
        return NULL;
    }
    if (!PyDict_CheckExact(item)) {
        Py_RETURN_NONE;
    }
    Py_ssize_t total = 0, n = PyDict_GET_SIZE(item), pos = 0;
    PyObject *out = new_dict(n), *name, *v;
    while (out != NULL && PyDict_Next(item, &pos, &name, &v)) {
        Py_ssize_t vs, nb;
        if (!PyUnicode_CheckExact(name) || (nb = utf8_len(name)) < 0) {
            Py_CLEAR(out);
            break;
        }
        Py_INCREF(v);
        PyObject *w = enc_value(self, v, 1, &vs);
        Py_DECREF(v);
        if (w == NULL || PyDict_SetItem(out, name, w) < 0) {
            Py_XDECREF(w);
            Py_CLEAR(out);
            break;
        }
        Py_DECREF(w);
        if (nb < 1 || nb > MAX_NAME_BYTES) {
            Py_CLEAR(out);
            break;
        }
        total += nb + vs;
    }
    if (out != NULL && PyDict_GET_SIZE(item) != n) {
        Py_CLEAR(out);
    }
    if (out == NULL) {
        /* Anything but an ordinary exception (KeyboardInterrupt, SystemExit) goes on. */
        if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_Exception)) {
            return NULL;
        }
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    PyObject *bound = PyLong_FromSsize_t(total);
    if (bound == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    PyObject *result = PyTuple_Pack(2, out, bound);
    Py_DECREF(out);
    Py_DECREF(bound);
    return result;
}

static int
Encoder_init(EncoderObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *slow;
    static char *kwlist[] = {"slow", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Encoder", kwlist, &slow)) {
        return -1;
    }
    Py_XSETREF(self->slow, Py_NewRef(slow));
    return 0;
}

static int
Encoder_traverse(EncoderObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->slow);
    return 0;
}

static int
Encoder_clear(EncoderObject *self)
{
    Py_CLEAR(self->slow);
    return 0;
}

static void
Encoder_dealloc(EncoderObject *self)
{
    PyObject_GC_UnTrack(self);
    Encoder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Encoder_methods[] = {
    {"item", (PyCFunction)Encoder_item, METH_O,
     "(wire, size bound) of an item, or None: then marshal encodes it in Python."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject EncoderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asyncdyn._speedups.Encoder",
    .tp_doc = PyDoc_STR("marshal._encode_item for the common shapes of items."),
    .tp_basicsize = sizeof(EncoderObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Encoder_init,
    .tp_dealloc = (destructor)Encoder_dealloc,
    .tp_traverse = (traverseproc)Encoder_traverse,
    .tp_clear = (inquiry)Encoder_clear,
    .tp_methods = Encoder_methods,
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "asyncdyn._speedups",
    .m_doc = PyDoc_STR("The compiled decode path of asyncdyn.marshal (optional)."),
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (PyType_Ready(&DecoderType) < 0 || PyType_Ready(&EncoderType) < 0) {
        return NULL;
    }
    if (str_S == NULL) {
        str_S = PyUnicode_InternFromString("S");
        str_N = PyUnicode_InternFromString("N");
        str_M = PyUnicode_InternFromString("M");
        str_L = PyUnicode_InternFromString("L");
        str_BOOL = PyUnicode_InternFromString("BOOL");
        str_NULL = PyUnicode_InternFromString("NULL");
        if (!str_S || !str_N || !str_M || !str_L || !str_BOOL || !str_NULL) {
            return NULL;
        }
    }
    PyObject *m = PyModule_Create(&speedups_module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "Decoder", (PyObject *)&DecoderType) < 0
        || PyModule_AddObjectRef(m, "Encoder", (PyObject *)&EncoderType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
