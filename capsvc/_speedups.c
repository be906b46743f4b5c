/*
 * Optional C versions of capsvc's per-packet loops: TPACKET_V3 block -> Packet tuples or
 * records (capsvc.sources.afpacket._tpacket.parse_block), Packet batch or records -> pcap
 * records (capsvc.sinks._pcap.encode_records), classic BPF and a pcap file's records
 * (capsvc.sources.capfile), the flight recorder's append (capsvc.sinks._recbuf), and the
 * default text line (_textline.h,
 * capsvc.format._linefast).
 *
 * The pure-Python functions are the reference: these give the same results for every input
 * (the tests named test_*_speedups.py and test_records*.py compare them on generated and
 * malformed input), and capsvc uses the Python ones when this module is not built or
 * CAPSVC_NO_SPEEDUPS is set. None of them keeps a reference to its buffer; none raises for
 * malformed input that the Python version accepts.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Little-endian loads from a ring the kernel wrote (x86 and arm64 alike). */
static inline uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}

/* struct tpacket3_hdr (48 bytes) and what follows it; see _tpacket.py. */
#define HDR_SIZE 48
#define SLL_AT 48             /* TPACKET_ALIGN(sizeof(struct tpacket3_hdr)) */
#define HDR_READ 59           /* header through sll_pkttype: what a raw frame needs */
#define HDR_AND_SLL 68        /* header and the whole sockaddr_ll: what a cooked frame needs */
#define TP_STATUS_VLAN_VALID (1u << 4)
#define TP_STATUS_VLAN_TPID_VALID (1u << 6)
#define PACKET_OUTGOING 4

/* A Packet: tp_alloc of the NamedTuple class, filled like a tuple. Its items are ints, bytes
 * and enum members, which make no reference cycle: the garbage collector need not track it. */
static PyObject *new_packet(PyTypeObject *type, long long ts, PyObject *data, unsigned long wire,
                            PyObject *direction, long ifindex) {
    PyObject *p = type->tp_alloc(type, 5);
    if (p == NULL) {
        Py_DECREF(data);
        return NULL;
    }
    PyObject *ts_obj = PyLong_FromLongLong(ts);
    PyObject *wire_obj = PyLong_FromUnsignedLong(wire);
    PyObject *if_obj = PyLong_FromLong(ifindex);
    if (ts_obj == NULL || wire_obj == NULL || if_obj == NULL) {
        Py_XDECREF(ts_obj); Py_XDECREF(wire_obj); Py_XDECREF(if_obj);
        Py_DECREF(data);
        Py_DECREF(p);
        return NULL;
    }
    Py_INCREF(direction);
    PyTuple_SET_ITEM(p, 0, ts_obj);
    PyTuple_SET_ITEM(p, 1, data);
    PyTuple_SET_ITEM(p, 2, wire_obj);
    PyTuple_SET_ITEM(p, 3, direction);
    PyTuple_SET_ITEM(p, 4, if_obj);
    if (PyObject_GC_IsTracked(p))
        PyObject_GC_UnTrack(p);
    return p;
}

/* One frame of a block, as the rest of capsvc sees it: LINKTYPE_LINUX_SLL2 in front for a cooked
 * socket, the 802.1Q tag the kernel took off put back for `vlan`; otherwise the bytes as they
 * lie in the ring. Writes it to `d` unless `d` is NULL; returns its length either way. */
static Py_ssize_t emit_frame(const unsigned char *h, const unsigned char *frame, uint32_t snap,
                             int cooked, int vlan, unsigned char *d) {
    if (cooked) {
        /* protocol, reserved, ifindex, hatype, pkttype, halen, addr */
        if (d != NULL) {
            unsigned char halen = h[SLL_AT + 11];
            uint32_t ifi = le32(h + SLL_AT + 4);           /* SLL2 carries it big-endian */
            uint16_t hatype = le16(h + SLL_AT + 8);
            memcpy(d, h + SLL_AT + 2, 2);                  /* sll_protocol, network order */
            d[2] = d[3] = 0;
            d[4] = (unsigned char)(ifi >> 24); d[5] = (unsigned char)(ifi >> 16);
            d[6] = (unsigned char)(ifi >> 8); d[7] = (unsigned char)ifi;
            d[8] = (unsigned char)(hatype >> 8); d[9] = (unsigned char)hatype;
            d[10] = h[SLL_AT + 10];
            d[11] = halen < 8 ? halen : 8;
            memcpy(d + 12, h + SLL_AT + 12, 8);
            memcpy(d + 20, frame, snap);
        }
        return 20 + (Py_ssize_t)snap;
    }
    if (vlan) {
        if (d != NULL) {
            uint32_t status = le32(h + 20);
            uint16_t tci = le16(h + 32), tpid = le16(h + 36); /* hv1.tp_vlan_tci, _tpid */
            if (!(status & TP_STATUS_VLAN_TPID_VALID))
                tpid = 0x8100;
            memcpy(d, frame, 12);
            d[12] = (unsigned char)(tpid >> 8); d[13] = (unsigned char)tpid;
            d[14] = (unsigned char)(tci >> 8); d[15] = (unsigned char)tci;
            memcpy(d + 16, frame + 12, snap - 12);
        }
        return (Py_ssize_t)snap + 4;
    }
    if (d != NULL)
        memcpy(d, frame, snap);
    return (Py_ssize_t)snap;
}

/* Walks the frames of the block at `base`; each step gives a frame's header, its bytes in the
 * ring, and whether its VLAN tag is to be put back. Stops at a frame that would run past the
 * buffer (as the Python parser does). */
typedef struct {
    const unsigned char *buf;
    Py_ssize_t end, off, need;
    uint32_t left, vlan_valid;
    int cooked;
} block_walk;

static int walk_start(block_walk *w, const unsigned char *buf, Py_ssize_t len, Py_ssize_t base,
                      int cooked, int restore_vlan) {
    w->buf = buf;
    w->end = len;
    w->cooked = cooked;
    w->vlan_valid = restore_vlan ? TP_STATUS_VLAN_VALID : 0;
    w->need = cooked ? HDR_AND_SLL : HDR_READ;
    if (base < 0 || base + 20 > len) { /* no block here: nothing to read */
        w->left = 0;
        return 0;
    }
    w->left = le32(buf + base + 12);
    w->off = base + (Py_ssize_t)le32(buf + base + 16);
    return 1;
}

static const unsigned char *walk_next(block_walk *w, const unsigned char **frame, int *vlan) {
    if (w->left == 0 || w->off < 0 || w->off + w->need > w->end)
        return NULL;
    const unsigned char *h = w->buf + w->off;
    uint32_t snap = le32(h + 12);
    Py_ssize_t start = w->off + le16(h + 24);
    if (start + (Py_ssize_t)snap > w->end)
        return NULL;
    *frame = w->buf + start;
    *vlan = !w->cooked && (le32(h + 20) & w->vlan_valid) && snap >= 12;
    uint32_t nxt = le32(h);
    w->left = nxt ? w->left - 1 : 0;
    w->off += nxt;
    return h;
}

static inline long long frame_ts(const unsigned char *h) {
    return (long long)le32(h + 4) * 1000000000LL + le32(h + 8);
}

static inline uint32_t frame_wire(const unsigned char *h, int cooked, int vlan) {
    return le32(h + 16) + (cooked ? 20 : vlan ? 4 : 0);
}

static PyObject *parse_block(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t base;
    int cooked, restore_vlan;
    PyObject *out;
    PyTypeObject *packet_type;
    PyObject *inbound, *outbound;
    if (!PyArg_ParseTuple(args, "y*nppO!O!OO", &view, &base, &cooked, &restore_vlan,
                          &PyList_Type, &out, &PyType_Type, &packet_type, &inbound, &outbound))
        return NULL;
    block_walk w;
    walk_start(&w, view.buf, view.len, base, cooked, restore_vlan);
    const unsigned char *h, *frame;
    int vlan;
    while ((h = walk_next(&w, &frame, &vlan)) != NULL) {
        uint32_t snap = le32(h + 12);
        Py_ssize_t len = emit_frame(h, frame, snap, cooked, vlan, NULL);
        PyObject *data = PyBytes_FromStringAndSize(NULL, len);
        if (data == NULL)
            goto fail;
        emit_frame(h, frame, snap, cooked, vlan, (unsigned char *)PyBytes_AS_STRING(data));
        PyObject *p = new_packet(packet_type, frame_ts(h), data, frame_wire(h, cooked, vlan),
                                 h[SLL_AT + 10] == PACKET_OUTGOING ? outbound : inbound,
                                 (long)(int32_t)le32(h + SLL_AT + 4));
        if (p == NULL)
            goto fail;
        int rc = PyList_Append(out, p);
        Py_DECREF(p);
        if (rc < 0)
            goto fail;
    }
    PyBuffer_Release(&view);
    Py_INCREF(out);
    return out;
fail:
    PyBuffer_Release(&view);
    return NULL;
}

/* Records: the frames of ring blocks in one bytes object each, for sinks that need no Packet per
 * frame (capsvc._records). A record is a 24-byte header in native byte order, then the frame:
 *   int64 ts_ns; uint32 caplen; uint32 wire; int32 ifindex; uint8 outgoing; uint8 pad[3].
 * outgoing is 0 for a packet coming in, 1 going out, 2 unknown (a pcap file's). */
#define REC_HDR 24

typedef struct {
    long long ts;
    uint32_t caplen, wire;
    int32_t ifindex;
    unsigned char outgoing;
} rec_hdr;

static inline void rec_put(unsigned char *p, const rec_hdr *r) {
    memcpy(p, &r->ts, 8);
    memcpy(p + 8, &r->caplen, 4);
    memcpy(p + 12, &r->wire, 4);
    memcpy(p + 16, &r->ifindex, 4);
    p[20] = r->outgoing;
    p[21] = p[22] = p[23] = 0;
}

static inline void rec_get(const unsigned char *p, rec_hdr *r) {
    memcpy(&r->ts, p, 8);
    memcpy(&r->caplen, p + 8, 4);
    memcpy(&r->wire, p + 12, 4);
    memcpy(&r->ifindex, p + 16, 4);
    r->outgoing = p[20];
}

static PyObject *block_records(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t base;
    int cooked, restore_vlan;
    if (!PyArg_ParseTuple(args, "y*npp", &view, &base, &cooked, &restore_vlan))
        return NULL;
    block_walk w;
    const unsigned char *h, *frame;
    int vlan;
    Py_ssize_t total = 0, count = 0;
    walk_start(&w, view.buf, view.len, base, cooked, restore_vlan);
    while ((h = walk_next(&w, &frame, &vlan)) != NULL) {
        total += REC_HDR + emit_frame(h, frame, le32(h + 12), cooked, vlan, NULL);
        count++;
    }
    PyObject *data = PyBytes_FromStringAndSize(NULL, total);
    if (data == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    unsigned char *d = (unsigned char *)PyBytes_AS_STRING(data);
    long long wire_sum = 0;
    walk_start(&w, view.buf, view.len, base, cooked, restore_vlan);
    for (Py_ssize_t i = 0; i < count && (h = walk_next(&w, &frame, &vlan)) != NULL; i++) {
        rec_hdr r;
        r.ts = frame_ts(h);
        r.wire = frame_wire(h, cooked, vlan);
        r.ifindex = (int32_t)le32(h + SLL_AT + 4);
        r.outgoing = h[SLL_AT + 10] == PACKET_OUTGOING;
        r.caplen = (uint32_t)emit_frame(h, frame, le32(h + 12), cooked, vlan, d + REC_HDR);
        rec_put(d, &r);
        d += REC_HDR + r.caplen;
        wire_sum += r.wire;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("NnL", data, count, wire_sum);
}

/* Iterates the records of a list of bytes parts; a record cut short ends its part. */
typedef struct {
    PyObject *parts;
    Py_ssize_t part, off;
} rec_walk;

static const unsigned char *rec_next(rec_walk *w, rec_hdr *r) {
    while (w->part < PyList_GET_SIZE(w->parts)) {
        PyObject *b = PyList_GET_ITEM(w->parts, w->part);
        Py_ssize_t len = PyBytes_GET_SIZE(b);
        const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(b) + w->off;
        if (w->off + REC_HDR <= len) {
            rec_get(p, r);
            if (w->off + REC_HDR + (Py_ssize_t)r->caplen <= len) {
                w->off += REC_HDR + r->caplen;
                return p + REC_HDR;
            }
        }
        w->part++;
        w->off = 0;
    }
    return NULL;
}

static int check_parts(PyObject *parts) {
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(parts); i++) {
        if (!PyBytes_CheckExact(PyList_GET_ITEM(parts, i))) {
            PyErr_SetString(PyExc_TypeError, "record parts are bytes");
            return -1;
        }
    }
    return 0;
}

static PyObject *records_pcap(PyObject *self, PyObject *args) {
    PyObject *parts;
    Py_ssize_t snaplen;
    int nanosecond;
    if (!PyArg_ParseTuple(args, "O!np", &PyList_Type, &parts, &snaplen, &nanosecond))
        return NULL;
    if (check_parts(parts) < 0)
        return NULL;
    rec_walk w = {parts, 0, 0};
    rec_hdr r;
    Py_ssize_t total = 0;
    while (rec_next(&w, &r) != NULL)
        total += 16 + ((Py_ssize_t)r.caplen < snaplen ? (Py_ssize_t)r.caplen : snaplen);
    PyObject *result = PyBytes_FromStringAndSize(NULL, total);
    if (result == NULL)
        return NULL;
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(result);
    const unsigned char *data;
    rec_walk again = {parts, 0, 0};
    const long long top_ts = 4294967296LL * 1000000000LL - 1;
    while ((data = rec_next(&again, &r)) != NULL) {
        uint32_t incl = (Py_ssize_t)r.caplen < snaplen ? r.caplen : (uint32_t)snaplen;
        long long ts = r.ts < 0 ? 0 : r.ts > top_ts ? top_ts : r.ts;
        long long sec = ts / 1000000000LL, frac = ts % 1000000000LL;
        put32(o, (uint32_t)sec);
        put32(o + 4, (uint32_t)(nanosecond ? frac : frac / 1000));
        put32(o + 8, incl);
        put32(o + 12, r.wire > incl ? r.wire : incl);
        memcpy(o + 16, data, incl);
        o += 16 + incl;
    }
    return result;
}

static PyObject *records_packets(PyObject *self, PyObject *args) {
    PyObject *parts, *out, *inbound, *outbound, *unknown;
    PyTypeObject *packet_type;
    if (!PyArg_ParseTuple(args, "O!O!OOOO!", &PyList_Type, &parts, &PyType_Type, &packet_type,
                          &inbound, &outbound, &unknown, &PyList_Type, &out))
        return NULL;
    if (check_parts(parts) < 0)
        return NULL;
    rec_walk w = {parts, 0, 0};
    rec_hdr r;
    const unsigned char *data;
    while ((data = rec_next(&w, &r)) != NULL) {
        PyObject *bytes = PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)r.caplen);
        if (bytes == NULL)
            return NULL;
        PyObject *p = new_packet(packet_type, r.ts, bytes, r.wire,
                                 r.outgoing == 1 ? outbound : r.outgoing ? unknown : inbound,
                                 (long)r.ifindex);
        if (p == NULL)
            return NULL;
        int rc = PyList_Append(out, p);
        Py_DECREF(p);
        if (rc < 0)
            return NULL;
    }
    Py_INCREF(out);
    return out;
}

/* A view taken by record_fields: released only when it came from the buffer protocol. */
static inline void release(Py_buffer *view) {
    if (view->obj != NULL)
        PyBuffer_Release(view);
}

/* One record's fields, clamped to what a pcap record holds (as _pcap._clamped does). */
static int record_fields(PyObject *packet, long long *ts, unsigned long long *wire,
                         Py_buffer *data) {
    if (!PyTuple_Check(packet) || PyTuple_GET_SIZE(packet) < 3) {
        PyErr_SetString(PyExc_TypeError, "a batch holds Packet tuples");
        return -1;
    }
    int overflow = 0;
    long long t = PyLong_AsLongLongAndOverflow(PyTuple_GET_ITEM(packet, 0), &overflow);
    if (t == -1 && PyErr_Occurred())
        return -1;
    const long long top_ts = 4294967296LL * 1000000000LL - 1;
    if (overflow > 0 || t > top_ts) t = top_ts;
    if (overflow < 0 || t < 0) t = 0;
    long long w = PyLong_AsLongLongAndOverflow(PyTuple_GET_ITEM(packet, 2), &overflow);
    if (w == -1 && PyErr_Occurred())
        return -1;
    if (overflow > 0 || w > 4294967295LL) w = 4294967295LL;
    if (overflow < 0 || w < 0) w = 0;
    PyObject *d = PyTuple_GET_ITEM(packet, 1);
    if (PyBytes_CheckExact(d)) { /* the common case: no buffer protocol round trip */
        data->obj = NULL;
        data->buf = PyBytes_AS_STRING(d);
        data->len = PyBytes_GET_SIZE(d);
    } else if (PyObject_GetBuffer(d, data, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    *ts = t;
    *wire = (unsigned long long)w;
    return 0;
}

static PyObject *encode_records(PyObject *self, PyObject *args) {
    PyObject *batch;
    Py_ssize_t snaplen;
    int nanosecond;
    if (!PyArg_ParseTuple(args, "O!np", &PyList_Type, &batch, &snaplen, &nanosecond))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(batch);
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p = PyList_GET_ITEM(batch, i);
        if (!PyTuple_Check(p) || PyTuple_GET_SIZE(p) < 3) {
            PyErr_SetString(PyExc_TypeError, "a batch holds Packet tuples");
            return NULL;
        }
        PyObject *d = PyTuple_GET_ITEM(p, 1);
        Py_ssize_t len = PyBytes_CheckExact(d) ? PyBytes_GET_SIZE(d) : PyObject_Length(d);
        if (len < 0)
            return NULL;
        total += 16 + (len < snaplen ? len : snaplen);
    }
    PyObject *result = PyBytes_FromStringAndSize(NULL, total);
    if (result == NULL)
        return NULL;
    unsigned char *w = (unsigned char *)PyBytes_AS_STRING(result);
    unsigned char *stop = w + total;
    for (Py_ssize_t i = 0; i < n; i++) {
        long long ts;
        unsigned long long wire;
        Py_buffer data;
        if (record_fields(PyList_GET_ITEM(batch, i), &ts, &wire, &data) < 0) {
            Py_DECREF(result);
            return NULL;
        }
        Py_ssize_t incl = data.len < snaplen ? data.len : snaplen;
        if (w + 16 + incl > stop) { /* the batch changed under us: refuse rather than overrun */
            release(&data);
            Py_DECREF(result);
            PyErr_SetString(PyExc_RuntimeError, "batch changed while being encoded");
            return NULL;
        }
        long long sec = ts / 1000000000LL, frac = ts % 1000000000LL;
        put32(w, (uint32_t)sec);
        put32(w + 4, (uint32_t)(nanosecond ? frac : frac / 1000));
        put32(w + 8, (uint32_t)incl);
        put32(w + 12, (uint32_t)(wire > (unsigned long long)incl ? wire : (unsigned long long)incl));
        memcpy(w + 16, data.buf, (size_t)incl);
        w += 16 + incl;
        release(&data);
    }
    return result;
}

static PyObject *wire_total(PyObject *self, PyObject *batch) {
    if (!PyList_Check(batch)) {
        PyErr_SetString(PyExc_TypeError, "a batch is a list of Packets");
        return NULL;
    }
    long long total = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(batch); i++) {
        PyObject *p = PyList_GET_ITEM(batch, i);
        if (!PyTuple_Check(p) || PyTuple_GET_SIZE(p) < 3) {
            PyErr_SetString(PyExc_TypeError, "a batch holds Packet tuples");
            return NULL;
        }
        long long w = PyLong_AsLongLong(PyTuple_GET_ITEM(p, 2));
        if (w == -1 && PyErr_Occurred())
            return NULL;
        total += w;
    }
    return PyLong_FromLongLong(total);
}

/* libpcap, reached through the address of pcap_next_ex that the ctypes binding hands over (so
 * this module links against nothing). The header is struct pcap_pkthdr on Linux. */
struct pkthdr {
    long tv_sec;
    long tv_usec; /* nanoseconds on a nanosecond handle */
    uint32_t caplen;
    uint32_t len;
};
typedef int (*next_ex_fn)(void *, struct pkthdr **, const unsigned char **);

static PyObject *pcap_collect(PyObject *self, PyObject *args) {
    unsigned long long fn_addr, handle_addr;
    Py_ssize_t limit;
    long long scale;
    PyObject *direction, *inbound, *outbound, *out;
    long ifindex;
    int sll_offset, sll2;
    PyTypeObject *packet_type;
    if (!PyArg_ParseTuple(args, "KKnLOlipO!OOO!", &fn_addr, &handle_addr, &limit, &scale,
                          &direction, &ifindex, &sll_offset, &sll2, &PyType_Type, &packet_type,
                          &inbound, &outbound, &PyList_Type, &out))
        return NULL;
    next_ex_fn next_ex = (next_ex_fn)(uintptr_t)fn_addr;
    void *handle = (void *)(uintptr_t)handle_addr;
    int rc = 0;
    for (Py_ssize_t n = 0; n < limit; n++) {
        struct pkthdr *h;
        const unsigned char *bytes;
        rc = next_ex(handle, &h, &bytes);
        if (rc != 1)
            break;
        PyObject *data = PyBytes_FromStringAndSize((const char *)bytes, (Py_ssize_t)h->caplen);
        if (data == NULL)
            return NULL;
        PyObject *way = direction;
        long index = ifindex;
        if (sll_offset >= 0 && h->caplen > (uint32_t)sll_offset)
            way = bytes[sll_offset] == PACKET_OUTGOING ? outbound : inbound;
        if (sll2 && h->caplen >= 8)
            index = (long)((uint32_t)bytes[4] << 24 | (uint32_t)bytes[5] << 16 |
                           (uint32_t)bytes[6] << 8 | bytes[7]);
        PyObject *p = new_packet(packet_type,
                                 (long long)h->tv_sec * 1000000000LL + (long long)h->tv_usec * scale,
                                 data, h->len, way, index);
        if (p == NULL)
            return NULL;
        int failed = PyList_Append(out, p);
        Py_DECREF(p);
        if (failed)
            return NULL;
        rc = 1;
    }
    return PyLong_FromLong(rc);
}

/* Classic BPF as libpcap's bpf_filter runs it (offline: no ancillary data), for programs
 * capsvc.filter compiles. A program is bytes of struct sock_filter (u16 code, u8 jt, u8 jf,
 * u32 k, native order), checked by bpf_check before it runs. */
typedef struct {
    uint16_t code;
    uint8_t jt, jf;
    uint32_t k;
} bpf_insn;

static int bpf_check(const bpf_insn *f, Py_ssize_t n) {
    if (n < 1 || n > 4096)
        return 0;
    for (Py_ssize_t pc = 0; pc < n; pc++) {
        const bpf_insn *i = &f[pc];
        unsigned cls = i->code & 0x07;
        if (cls == 0x05) { /* JMP */
            if ((i->code & 0xf0) == 0x00) {
                if ((Py_ssize_t)i->k >= n - pc - 1)
                    return 0;
            } else if (pc + 1 + i->jt >= n || pc + 1 + i->jf >= n) {
                return 0;
            }
        } else if ((cls == 0x02 || cls == 0x03 ||
                    ((cls == 0x00 || cls == 0x01) && (i->code & 0xe0) == 0x60)) &&
                   i->k >= 16) {
            return 0; /* scratch memory index */
        } else if (cls == 0x04 && (i->code & 0x08) == 0 &&
                   ((i->code & 0xf0) == 0x30 || (i->code & 0xf0) == 0x90) && i->k == 0) {
            return 0; /* division by a constant zero */
        }
    }
    return (f[n - 1].code & 0x07) == 0x06; /* ends with a return */
}

static inline uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t bpf_run(const bpf_insn *f, const unsigned char *p, uint32_t buflen,
                        uint32_t wirelen) {
    uint32_t A = 0, X = 0, k, mem[16] = {0};
    for (const bpf_insn *pc = f;; pc++) {
        switch (pc->code) {
        case 0x06: return pc->k;                       /* ret #k */
        case 0x16: return A;                           /* ret a */
        case 0x00: A = pc->k; break;                   /* ld #k */
        case 0x01: X = pc->k; break;                   /* ldx #k */
        case 0x80: A = wirelen; break;                 /* ld len */
        case 0x81: X = wirelen; break;                 /* ldx len */
        case 0x60: A = mem[pc->k]; break;              /* ld M[k] */
        case 0x61: X = mem[pc->k]; break;              /* ldx M[k] */
        case 0x02: mem[pc->k] = A; break;              /* st */
        case 0x03: mem[pc->k] = X; break;              /* stx */
        case 0x20:                                     /* ld [k] */
            k = pc->k;
            if (k > buflen || 4 > buflen - k) return 0;
            A = be32(p + k); break;
        case 0x28:                                     /* ldh [k] */
            k = pc->k;
            if (k > buflen || 2 > buflen - k) return 0;
            A = (uint32_t)p[k] << 8 | p[k + 1]; break;
        case 0x30:                                     /* ldb [k] */
            k = pc->k;
            if (k >= buflen) return 0;
            A = p[k]; break;
        case 0x40:                                     /* ld [x + k] */
            if (pc->k > buflen || X > buflen - pc->k) return 0;
            k = X + pc->k;
            if (4 > buflen - k) return 0;
            A = be32(p + k); break;
        case 0x48:                                     /* ldh [x + k] */
            if (pc->k > buflen || X > buflen - pc->k) return 0;
            k = X + pc->k;
            if (2 > buflen - k) return 0;
            A = (uint32_t)p[k] << 8 | p[k + 1]; break;
        case 0x50:                                     /* ldb [x + k] */
            if (pc->k >= buflen || X >= buflen - pc->k) return 0;
            A = p[X + pc->k]; break;
        case 0xb1:                                     /* ldxb 4*([k]&0xf) */
            k = pc->k;
            if (k >= buflen) return 0;
            X = (uint32_t)(p[k] & 0xf) << 2; break;
        case 0x05: pc += pc->k; break;                 /* ja */
        case 0x15: pc += A == pc->k ? pc->jt : pc->jf; break;
        case 0x25: pc += A > pc->k ? pc->jt : pc->jf; break;
        case 0x35: pc += A >= pc->k ? pc->jt : pc->jf; break;
        case 0x45: pc += (A & pc->k) ? pc->jt : pc->jf; break;
        case 0x1d: pc += A == X ? pc->jt : pc->jf; break;
        case 0x2d: pc += A > X ? pc->jt : pc->jf; break;
        case 0x3d: pc += A >= X ? pc->jt : pc->jf; break;
        case 0x4d: pc += (A & X) ? pc->jt : pc->jf; break;
        case 0x04: A += pc->k; break;
        case 0x0c: A += X; break;
        case 0x14: A -= pc->k; break;
        case 0x1c: A -= X; break;
        case 0x24: A *= pc->k; break;
        case 0x2c: A *= X; break;
        case 0x34: A /= pc->k; break;
        case 0x3c: if (X == 0) return 0; A /= X; break;
        case 0x94: A %= pc->k; break;
        case 0x9c: if (X == 0) return 0; A %= X; break;
        case 0x44: A |= pc->k; break;
        case 0x4c: A |= X; break;
        case 0x54: A &= pc->k; break;
        case 0x5c: A &= X; break;
        case 0xa4: A ^= pc->k; break;
        case 0xac: A ^= X; break;
        case 0x64: A = pc->k < 32 ? A << pc->k : 0; break;
        case 0x6c: A = X < 32 ? A << X : 0; break;
        case 0x74: A = pc->k < 32 ? A >> pc->k : 0; break;
        case 0x7c: A = X < 32 ? A >> X : 0; break;
        case 0x84: A = (uint32_t)(-(int64_t)A); break;
        case 0x07: X = A; break;                       /* tax */
        case 0x87: A = X; break;                       /* txa */
        default: return 0;                             /* what libpcap refuses */
        }
    }
}

static int get_program(PyObject *obj, Py_buffer *view, const bpf_insn **f, Py_ssize_t *n) {
    *f = NULL;
    *n = 0;
    view->obj = NULL;
    if (obj == Py_None)
        return 0;
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0)
        return -1;
    if (view->len % 8 != 0 || !bpf_check((const bpf_insn *)view->buf, view->len / 8)) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "not a valid classic BPF program");
        return -1;
    }
    *f = (const bpf_insn *)view->buf;
    *n = view->len / 8;
    return 0;
}

static PyObject *bpf_filter(PyObject *self, PyObject *args) {
    PyObject *prog;
    Py_buffer data;
    unsigned long wirelen;
    if (!PyArg_ParseTuple(args, "Oy*k", &prog, &data, &wirelen))
        return NULL;
    Py_buffer view;
    const bpf_insn *f;
    Py_ssize_t n;
    if (get_program(prog, &view, &f, &n) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    uint32_t r = f == NULL ? 262144 : bpf_run(f, data.buf, (uint32_t)data.len, (uint32_t)wirelen);
    PyBuffer_Release(&data);
    if (view.obj != NULL)
        PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(r);
}

static inline uint32_t rd32(const unsigned char *p, int swapped) {
    return swapped ? be32(p) : le32(p);
}

/* The records of a pcap file's bytes from `pos`, as capsvc._records records: what
 * capfile._decode._PcapParser.parse does, with `program` (None: keep all) deciding in C. Returns
 * (records, count, wire, examined, new_pos, wanted, error_pos): wanted is what the record at
 * new_pos needs to be whole when the bytes ran out (else 0), error_pos the offset of a record
 * whose captured length exceeds maxcap (else -1). */
static PyObject *pcap_records(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos, limit;
    int swapped, nanosecond;
    unsigned long snap, maxcap;
    PyObject *prog;
    if (!PyArg_ParseTuple(args, "y*nnppkkO", &view, &pos, &limit, &swapped, &nanosecond, &snap,
                          &maxcap, &prog))
        return NULL;
    Py_buffer pview;
    const bpf_insn *f;
    Py_ssize_t n;
    if (get_program(prog, &pview, &f, &n) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const unsigned char *buf = view.buf;
    Py_ssize_t end = view.len;
    if (pos < 0 || pos > end)
        pos = end;
    /* First the room the records take at most (every complete record kept), from the headers:
     * a record claiming more than the snaplen takes only the snaplen here. */
    Py_ssize_t room = 0;
    for (Py_ssize_t at = pos, seen = 0; seen < limit && at + 16 <= end; seen++) {
        uint32_t incl = rd32(buf + at + 8, swapped);
        if (incl > maxcap || at + 16 + (Py_ssize_t)incl > end)
            break;
        room += REC_HDR + (Py_ssize_t)(incl > snap ? snap : incl);
        at += 16 + (Py_ssize_t)incl;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, room);
    if (out == NULL) {
        PyBuffer_Release(&view);
        if (pview.obj != NULL)
            PyBuffer_Release(&pview);
        return NULL;
    }
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out), *o0 = o;
    long long mult = nanosecond ? 1 : 1000, wire_sum = 0;
    Py_ssize_t count = 0, examined = 0, wanted = 0, error_pos = -1;
    while (examined < limit) {
        Py_ssize_t start = pos + 16;
        if (start > end) {
            wanted = 16;
            break;
        }
        const unsigned char *h = buf + pos;
        uint32_t sec = rd32(h, swapped), frac = rd32(h + 4, swapped);
        uint32_t incl = rd32(h + 8, swapped), orig = rd32(h + 12, swapped);
        uint32_t take = incl;
        if (incl > snap) {
            if (incl > maxcap) {
                error_pos = pos;
                break;
            }
            take = (uint32_t)snap;
        }
        Py_ssize_t stop = start + (Py_ssize_t)incl;
        if (stop > end) {
            wanted = 16 + (Py_ssize_t)incl;
            break;
        }
        examined++;
        uint32_t wire = orig > incl ? orig : incl;
        pos = stop;
        if (f != NULL && bpf_run(f, buf + start, take, wire) == 0)
            continue;
        rec_hdr r = {(long long)sec * 1000000000LL + (long long)frac * mult, take, wire, 0, 2};
        rec_put(o, &r);
        memcpy(o + REC_HDR, buf + start, take);
        o += REC_HDR + take;
        count++;
        wire_sum += wire;
    }
    PyBuffer_Release(&view);
    if (pview.obj != NULL)
        PyBuffer_Release(&pview);
    if (_PyBytes_Resize(&out, o - o0) < 0)
        return NULL;
    return Py_BuildValue("NnLnnnn", out, count, wire_sum, examined, pos, wanted, error_pos);
}

/* The flight recorder's append (capsvc.sinks._recbuf.RecordRing.append): Packet tuples from
 * batch[i] on as records "<qIIBxxxI" + data into `tail` at `at`, each record's charge (24 +
 * captured bytes) added to `charged`, and while `charged` exceeds `max_bytes` the oldest
 * records of `head` (from `head_start` to `head_end`, or to `at` when head is tail) evicted.
 * Stops at the first packet the Python code must take (its record does not fit the rest of
 * `tail`, a field outside the record's range, data not bytes) and after a packet whose
 * eviction emptied `head` while still over the bound. Returns (i, at, head_start, added,
 * added_bytes, evicted, evicted_bytes, charged, newest): `newest` the largest time seen,
 * starting from the `newest` given (None: none yet). */
static PyObject *ring_append(PyObject *self, PyObject *args) {
    PyObject *batch, *tail, *head, *newest_in;
    Py_ssize_t i, at, head_start, head_end;
    long long charged, max_bytes;
    if (!PyArg_ParseTuple(args, "O!nO!nO!nnLLO", &PyList_Type, &batch, &i, &PyByteArray_Type,
                          &tail, &at, &PyByteArray_Type, &head, &head_start, &head_end,
                          &charged, &max_bytes, &newest_in))
        return NULL;
    int have_newest = newest_in != Py_None;
    long long newest = 0;
    if (have_newest) {
        newest = PyLong_AsLongLong(newest_in);
        if (newest == -1 && PyErr_Occurred())
            return NULL;
    }
    unsigned char *t = (unsigned char *)PyByteArray_AS_STRING(tail);
    unsigned char *h = (unsigned char *)PyByteArray_AS_STRING(head);
    Py_ssize_t room = PyByteArray_GET_SIZE(tail);
    int same = head == tail;
    Py_ssize_t n = PyList_GET_SIZE(batch), added = 0, evicted = 0;
    long long added_bytes = 0, evicted_bytes = 0;
    if (i < 0)
        i = n;
    if (at < 0 || at > room || head_start < 0 || head_end > PyByteArray_GET_SIZE(head))
        i = n; /* not a state the ring makes: take nothing, change nothing */
    for (; i < n; i++) {
        PyObject *p = PyList_GET_ITEM(batch, i);
        if (!PyTuple_Check(p) || PyTuple_GET_SIZE(p) != 5)
            break;
        PyObject *f_ts = PyTuple_GET_ITEM(p, 0), *f_data = PyTuple_GET_ITEM(p, 1);
        PyObject *f_wire = PyTuple_GET_ITEM(p, 2), *f_dir = PyTuple_GET_ITEM(p, 3);
        PyObject *f_if = PyTuple_GET_ITEM(p, 4);
        if (!PyBytes_CheckExact(f_data) || !PyLong_Check(f_ts) || !PyLong_Check(f_wire) ||
            !PyLong_Check(f_dir) || !PyLong_Check(f_if))
            break;
        int overflow = 0;
        long long ts = PyLong_AsLongLongAndOverflow(f_ts, &overflow);
        if (overflow)
            break;
        long long wire = PyLong_AsLongLongAndOverflow(f_wire, &overflow);
        if (overflow || wire < 0 || wire > 4294967295LL)
            break;
        long long dir = PyLong_AsLongLongAndOverflow(f_dir, &overflow);
        if (overflow || dir < 0 || dir > 255)
            break;
        long long ifindex = PyLong_AsLongLongAndOverflow(f_if, &overflow);
        if (overflow || ifindex < 0 || ifindex > 4294967295LL)
            break;
        Py_ssize_t len = PyBytes_GET_SIZE(f_data);
        if (len > 4294967295LL || at + 24 + len > room)
            break;
        unsigned char *r = t + at;
        for (int k = 0; k < 8; k++)
            r[k] = (unsigned char)((unsigned long long)ts >> (8 * k));
        put32(r + 8, (uint32_t)len);
        put32(r + 12, (uint32_t)wire);
        r[16] = (unsigned char)dir;
        r[17] = r[18] = r[19] = 0;
        put32(r + 20, (uint32_t)ifindex);
        memcpy(r + 24, PyBytes_AS_STRING(f_data), (size_t)len);
        at += 24 + len;
        added++;
        added_bytes += len;
        charged += 24 + len;
        if (!have_newest || ts > newest) {
            newest = ts;
            have_newest = 1;
        }
        int exhausted = 0;
        while (charged > max_bytes) {
            Py_ssize_t limit = same ? at : head_end;
            if (head_start + 24 > limit) {
                exhausted = 1;
                break;
            }
            uint32_t size = le32(h + head_start + 8);
            head_start += 24 + (Py_ssize_t)size;
            charged -= 24 + (long long)size;
            evicted++;
            evicted_bytes += size;
        }
        if (exhausted) {
            i++;
            break;
        }
    }
    if (have_newest)
        return Py_BuildValue("nnnnLnLLL", i, at, head_start, added, added_bytes, evicted,
                             evicted_bytes, charged, newest);
    return Py_BuildValue("nnnnLnLLO", i, at, head_start, added, added_bytes, evicted,
                         evicted_bytes, charged, Py_None);
}

#include "_textline.h" /* the default text line: text_tables, text_records, text_packets */

static PyMethodDef methods[] = {
    {"pcap_collect", pcap_collect, METH_VARARGS,
     "pcap_collect(pcap_next_ex, handle, limit, scale, direction, ifindex, sll_offset, sll2, "
     "Packet, inbound, outbound, out) -> the last pcap_next_ex result"},
    {"wire_total", wire_total, METH_O, "wire_total(batch) -> the sum of its wire lengths"},
    {"parse_block", parse_block, METH_VARARGS,
     "parse_block(buf, base, cooked, restore_vlan, out, Packet, inbound, outbound) -> out"},
    {"encode_records", encode_records, METH_VARARGS,
     "encode_records(batch, snaplen, nanosecond) -> bytes"},
    {"block_records", block_records, METH_VARARGS,
     "block_records(buf, base, cooked, restore_vlan) -> (records, count, wire_total)"},
    {"records_pcap", records_pcap, METH_VARARGS,
     "records_pcap(parts, snaplen, nanosecond) -> pcap records"},
    {"records_packets", records_packets, METH_VARARGS,
     "records_packets(parts, Packet, inbound, outbound, unknown, out) -> out"},
    {"bpf_filter", bpf_filter, METH_VARARGS,
     "bpf_filter(program, data, wire_len) -> what the classic BPF program returns"},
    {"pcap_records", pcap_records, METH_VARARGS,
     "pcap_records(buf, pos, limit, swapped, nanosecond, snaplen, maxcap, program) -> "
     "(records, count, wire, examined, pos, wanted, error_pos)"},
    {"ring_append", ring_append, METH_VARARGS,
     "ring_append(batch, i, tail, at, head, head_start, head_end, charged, max_bytes, newest) "
     "-> (i, at, head_start, added, added_bytes, evicted, evicted_bytes, charged, newest)"},
    {"text_tables", text_tables, METH_VARARGS,
     "text_tables(flags, icmp, icmp6, tags, annotated, tcp_ports, udp_ports, vlan_tpids, "
     "quic_versions)"},
    {"text_records", text_records, METH_VARARGS,
     "text_records(parts, link, cooked, formatter, fallback, inbound, outbound, unknown) -> "
     "(text, handed) or None"},
    {"text_packets", text_packets, METH_VARARGS,
     "text_packets(batch, link, cooked, formatter, fallback, Direction) -> (text, handed) or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "capsvc._speedups",
    "C versions of capsvc's per-packet loops: block parsing, pcap encoding, BPF, text lines.",
    -1, methods,
};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
