/*
 * asyncdyn._speedups: DynamoDB JSON -> Python values, in C.
 *
 * The compiled twin of marshal._build's decoder. It walks what orjson.loads already built
 * (dicts, lists, strs) and never parses JSON itself. The pure-Python decoder in marshal.py is
 * the reference: every rule here mirrors one there, and both run the same tests. Where the
 * input is not what JSON produces (a map value that is not an exact dict, a list value that
 * is not an exact list), the pure function is called so that both paths agree even then.
 *
 * Why C and not more Python: a pure-Python decoder costs about 1,500 instructions per
 * attribute value (a dict lookup for the tag, a call per value); here a value is a switch on
 * its tag's first characters and one object built (benchmarks/RESULTS.md, section 12).
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

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "asyncdyn._speedups",
    .m_doc = PyDoc_STR("The compiled decode path of asyncdyn.marshal (optional)."),
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (PyType_Ready(&DecoderType) < 0) {
        return NULL;
    }
    if (str_S == NULL) {
        str_S = PyUnicode_InternFromString("S");
        str_N = PyUnicode_InternFromString("N");
        if (str_S == NULL || str_N == NULL) {
            return NULL;
        }
    }
    PyObject *m = PyModule_Create(&speedups_module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "Decoder", (PyObject *)&DecoderType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
