/*
 * capsvc's default text line in C (included by _speedups.c: one translation unit).
 *
 * What capsvc.format._line.TextFormatter.format writes, non-verbose and without -A, for the
 * frames whose line needs their headers only: IPv4 or IPv6 (no extension header) carrying TCP,
 * UDP or an ICMP/ICMPv6 message with an identifier and sequence number, on Ethernet (VLAN tags
 * included), Linux cooked v1/v2, raw IP, and BSD/OpenBSD loopback. Every other frame (a payload
 * that may be annotated, a fragment, a header cut short, anything the line marks with ??? or
 * [|...]) is handed to `fallback`, the Python formatter's `format`, so the text is the Python
 * formatter's byte for byte (tests/format/test_line_speedups.py compares them). Which ports and
 * first payload bytes lead to an annotation, the TCP flag texts and the tags come from the
 * Python module (text_tables), not from here.
 *
 * The clock prefix (HH:MM:SS in local time, computed once a second) is the formatter's own
 * cache (_sec, _clock), read at the start of a batch and around every call of `fallback`, and
 * written back when it changed: localtime_r here gives what time.localtime gives there.
 */

#include <arpa/inet.h>
#include <time.h>

#define TL_LINE_ROOM 512 /* more than any line written here */

enum { TL_ETHER = 1, TL_SLL, TL_SLL2, TL_RAW, TL_IPV4, TL_IPV6, TL_NULL, TL_LOOP };
enum { TL_UDP_APP = 1, TL_UDP_QUIC = 2 };
enum { TL_TAG_TCP, TL_TAG_UDP, TL_TAG_ICMP, TL_TAG_ICMP6 };

typedef struct {
    char text[24];
    unsigned char len;
} tl_text;

/* The tables text_tables() fills from capsvc.format._linefast. */
static struct {
    int ready;
    tl_text flags[256];           /* TCP_FLAGS */
    tl_text icmp[256], icmp6[256]; /* names of the id/seq message types; len 0 for others */
    tl_text tags[4][3];           /* [TL_TAG_*][direction] */
    unsigned char annotated[256]; /* first payload bytes annotate_tcp may recognise */
    unsigned char tcp_ports[65536]; /* ports whose TCP payload may be annotated */
    unsigned char udp_ports[65536]; /* TL_UDP_APP / TL_UDP_QUIC */
    uint16_t vlan[8];
    int nvlan;
    uint32_t quic_versions[8]; /* QUIC versions whose long header the formatter reads */
    int nquic;
} TL;

static inline unsigned be16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }

/* Copies a table text: all of its storage, a fixed size the compiler copies inline (the
 * output always has room past the line), then steps over the text only. */
static inline char *tl_put(char *o, const tl_text *t) {
    memcpy(o, t->text, sizeof t->text);
    return o + t->len;
}

static inline char *tl_str(char *o, const char *s, size_t n) {
    memcpy(o, s, n);
    return o + n;
}

static const char tl_digits[201] =
    "0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243444546"
    "4748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293"
    "949596979899";

static char *tl_uint(char *o, unsigned long long v) {
    int n = 1;
    for (unsigned long long x = v; x >= 10; x /= 10)
        n++;
    char *t = o + n;
    while (v >= 100) {
        unsigned d = (unsigned)(v % 100) * 2;
        v /= 100;
        *--t = tl_digits[d + 1];
        *--t = tl_digits[d];
    }
    if (v >= 10) {
        *--t = tl_digits[v * 2 + 1];
        *--t = tl_digits[v * 2];
    } else {
        *--t = (char)('0' + v);
    }
    return o + n;
}

static inline char *tl_int(char *o, long long v) {
    if (v < 0) {
        *o++ = '-';
        return tl_uint(o, 0ULL - (unsigned long long)v);
    }
    return tl_uint(o, (unsigned long long)v);
}

/* inet_ntoa's text of the address at p. */
static char *tl_ipv4(char *o, const unsigned char *p) {
    for (int i = 0; i < 4; i++) {
        unsigned b = p[i];
        if (b >= 100) {
            *o++ = (char)('0' + b / 100);
            b %= 100;
            *o++ = tl_digits[b * 2];
            *o++ = tl_digits[b * 2 + 1];
        } else if (b >= 10) {
            *o++ = tl_digits[b * 2];
            *o++ = tl_digits[b * 2 + 1];
        } else {
            *o++ = (char)('0' + b);
        }
        *o++ = '.';
    }
    return o - 1;
}

/* The address text of the IP header at `ip` (version 4 or 6), bracketed if asked. */
static char *tl_addr(char *o, const unsigned char *ip, int v6, int src, int bracket) {
    if (!v6)
        return tl_ipv4(o, ip + (src ? 12 : 16));
    if (bracket)
        *o++ = '[';
    /* written in place: the output has room for INET6_ADDRSTRLEN more */
    if (inet_ntop(AF_INET6, ip + (src ? 8 : 24), o, INET6_ADDRSTRLEN) != NULL)
        o += strlen(o);
    if (bracket)
        *o++ = ']';
    return o;
}

/* Whether capsvc.decode._quic.quic_header finds no long header at d[pos:end]. */
static int tl_no_quic_header(const unsigned char *d, long long pos, long long end) {
    if (end - pos < 7 || !(d[pos] & 0x80))
        return 1;
    uint32_t version = (uint32_t)d[pos + 1] << 24 | (uint32_t)d[pos + 2] << 16 |
                       (uint32_t)d[pos + 3] << 8 | d[pos + 4];
    if (version) {
        int known = 0;
        for (int i = 0; i < TL.nquic; i++)
            known |= TL.quic_versions[i] == version;
        if (!known || !(d[pos] & 0x40))
            return 1;
    }
    long long at = pos + 5;
    unsigned dlen = d[at];
    if (dlen > 20 || at + 1 + dlen >= end)
        return 1;
    at += 1 + dlen;
    unsigned slen = d[at];
    return slen > 20 || at + 1 + slen > end;
}

/* Whether the QUIC formatter (capsvc.format._apps._quic) gives no text for the UDP payload
 * d[pos:stop] of `length` bytes: a short header, or no long header it reads and not one the
 * capture cut. */
static int tl_quic_plain(const unsigned char *d, long long pos, long long stop, long long length) {
    if (pos >= stop)
        return 0; /* nothing captured: the line may say [|udp] */
    if (!(d[pos] & 0x80))
        return 1;
    return tl_no_quic_header(d, pos, stop) && !(stop - pos < (length < 64 ? length : 64));
}

/* The line of one frame after its time stamp and space, written to `o` (TL_LINE_ROOM bytes),
 * or NULL when the Python formatter must write it. `dir` is 0, 1 or 2 already. */
static char *tl_frame(char *o, const unsigned char *d, Py_ssize_t n, long long wire, int dir,
                      int link, int cooked) {
    unsigned et;
    Py_ssize_t off;
    if (cooked == TL_SLL && dir == 0 && n >= 2)
        dir = be16(d) == 4 ? 2 : 1;
    else if (cooked == TL_SLL2 && dir == 0 && n >= 11)
        dir = d[10] == 4 ? 2 : 1;
    switch (link) {
    case TL_ETHER:
        if (n < 14)
            return NULL;
        et = be16(d + 12);
        off = 14;
        for (int i = 0; i < TL.nvlan; i++) {
            if (et != TL.vlan[i])
                continue;
            if (n < off + 4)
                return NULL;
            et = be16(d + off + 2);
            off += 4;
            i = -1; /* another tag may follow */
        }
        if (et < 0x0600)
            return NULL; /* LLC */
        break;
    case TL_SLL:
        if (n < 16)
            return NULL;
        et = be16(d + 14);
        off = 16;
        break;
    case TL_SLL2:
        if (n < 20)
            return NULL;
        et = be16(d);
        off = 20;
        break;
    case TL_RAW:
    case TL_IPV4:
    case TL_IPV6:
        if (n < 1)
            return NULL;
        off = 0;
        et = d[0] >> 4 == 4 && link != TL_IPV6   ? 0x0800
             : d[0] >> 4 == 6 && link != TL_IPV4 ? 0x86DD
                                                 : 0;
        break;
    case TL_NULL:
    case TL_LOOP: {
        if (n < 4)
            return NULL;
        uint32_t be = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
        uint32_t family = be;
        if (link == TL_NULL) {
            family = le32(d);
            if (family > 0xFFFF)
                family = be;
        }
        off = 4;
        et = family == 2 ? 0x0800
             : family == 10 || family == 24 || family == 28 || family == 30 ? 0x86DD
                                                                              : 0;
        break;
    }
    default:
        return NULL;
    }
    const unsigned char *ip = d + off;
    long long total, plen, most = wire > n ? wire : n;
    Py_ssize_t l4;
    int v6;
    if (et == 0x0800) {
        if (n < off + 20 || ip[0] >> 4 != 4)
            return NULL;
        Py_ssize_t ihl = (ip[0] & 15) * 4;
        total = be16(ip + 2);
        if (total == 0) /* segmentation offload */
            total = most - off;
        if (ihl < 20 || total < ihl || (be16(ip + 6) & 0x1FFF) || n < off + ihl)
            return NULL;
        l4 = off + ihl;
        plen = total - ihl;
        v6 = 0;
    } else if (et == 0x86DD) {
        if (n < off + 40 || ip[0] >> 4 != 6)
            return NULL;
        total = (long long)be16(ip + 4) + 40;
        if (total == 40 && most > off + 40) /* jumbogram or offloaded segment */
            total = most - off;
        l4 = off + 40;
        plen = total - 40;
        v6 = 1;
    } else {
        return NULL;
    }
    unsigned proto = ip[v6 ? 6 : 9];
    long long end = off + total < n ? off + total : n; /* the captured end of the IP payload */
    const unsigned char *t = d + l4;
    if (proto == 6 || proto == 17) {
        if (l4 + (proto == 6 ? 20 : 8) > end) /* the header is not all there */
            return NULL;
        unsigned sport = be16(t), dport = be16(t + 2);
        const tl_text *tag;
        long long length;
        if (proto == 6) {
            Py_ssize_t thl = (t[12] >> 4) * 4, pos = l4 + thl;
            length = plen - thl;
            if (thl < 20 || length < 0)
                return NULL;
            if (pos < end && (TL.annotated[d[pos]] || TL.tcp_ports[sport] || TL.tcp_ports[dport]))
                return NULL;
            tag = &TL.tags[TL_TAG_TCP][dir];
        } else {
            long long ulen = be16(t + 4);
            if (!(8 <= ulen && ulen <= plen))
                ulen = plen;
            long long pos = l4 + 8, stop = end < l4 + ulen ? end : l4 + ulen;
            int app = TL.udp_ports[dport] ? TL.udp_ports[dport] : TL.udp_ports[sport];
            length = ulen - 8;
            if (app && !(app == TL_UDP_QUIC && tl_quic_plain(d, pos, stop, length)))
                return NULL;
            tag = &TL.tags[TL_TAG_UDP][dir];
        }
        o = tl_put(o, tag);
        *o++ = ' ';
        o = tl_addr(o, ip, v6, 1, v6);
        *o++ = ':';
        o = tl_uint(o, sport);
        o = tl_str(o, " > ", 3);
        o = tl_addr(o, ip, v6, 0, v6);
        *o++ = ':';
        o = tl_uint(o, dport);
        if (proto == 6) {
            o = tl_str(o, " [", 2);
            o = tl_put(o, &TL.flags[t[13]]);
            *o++ = ']';
        }
        o = tl_str(o, " length ", 8);
        return tl_int(o, length);
    }
    if (proto == 1 || proto == 58) {
        if (l4 + 8 > end)
            return NULL;
        const tl_text *name = proto == 1 ? &TL.icmp[t[0]] : &TL.icmp6[t[0]];
        if (name->len == 0)
            return NULL;
        o = tl_put(o, &TL.tags[proto == 1 ? TL_TAG_ICMP : TL_TAG_ICMP6][dir]);
        *o++ = ' ';
        o = tl_addr(o, ip, v6, 1, 0);
        o = tl_str(o, " > ", 3);
        o = tl_addr(o, ip, v6, 0, 0);
        *o++ = ' ';
        o = tl_put(o, name);
        if (t[1]) {
            o = tl_str(o, ", code ", 7);
            o = tl_uint(o, t[1]);
        }
        o = tl_str(o, ", id ", 5);
        o = tl_uint(o, be16(t + 4));
        o = tl_str(o, ", seq ", 6);
        o = tl_uint(o, be16(t + 6));
        o = tl_str(o, ", length ", 9);
        return tl_int(o, plen);
    }
    return NULL;
}

/* -- the output and the clock ------------------------------------------------------------- */

typedef struct {
    PyObject *str; /* the compact ASCII str being written (cap characters), NULL after errors */
    char *buf;     /* its characters */
    Py_ssize_t len, cap;
    PyObject *chunks; /* str pieces before str when a line was not ASCII; NULL while none */
    PyObject *formatter, *fallback;
    long long sec;     /* the cached second, when have_sec */
    int have_sec, dirty;
    char clock[32];
    Py_ssize_t clock_len;
    Py_ssize_t handed; /* frames given to the fallback */
} tl_out;

/* A new str of `cap` ASCII characters to write the lines into. */
static int tl_new_str(tl_out *w, Py_ssize_t cap) {
    w->str = PyUnicode_New(cap, 127);
    if (w->str == NULL)
        return -1;
    w->buf = PyUnicode_DATA(w->str);
    w->cap = cap;
    w->len = 0;
    return 0;
}

/* Room for `more` characters after w->len (the str grows in place when it can). */
static int tl_room(tl_out *w, Py_ssize_t more) {
    if (w->len + more <= w->cap)
        return 0;
    Py_ssize_t cap = w->cap * 2 > w->len + more ? w->cap * 2 : w->len + more;
    if (PyUnicode_Resize(&w->str, cap) < 0)
        return -1; /* w->str is NULL now */
    w->buf = PyUnicode_DATA(w->str);
    w->cap = cap;
    return 0;
}

/* The formatter's clock cache into w: 1 when it can be used, 0 when the batch is Python's
 * (a _clock that is no short ASCII str), -1 on error. */
static int tl_load_clock(tl_out *w) {
    PyObject *sec = PyObject_GetAttrString(w->formatter, "_sec");
    if (sec == NULL)
        return -1;
    PyObject *clock = PyObject_GetAttrString(w->formatter, "_clock");
    if (clock == NULL) {
        Py_DECREF(sec);
        return -1;
    }
    int ok = 1;
    w->have_sec = 0;
    if (sec != Py_None) {
        int overflow = 0;
        long long s = PyLong_Check(sec) ? PyLong_AsLongLongAndOverflow(sec, &overflow) : 0;
        if (!PyLong_Check(sec) || overflow || (s == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            ok = 0; /* only Python knows what equals this */
        } else {
            w->have_sec = 1;
            w->sec = s;
        }
    }
    if (ok && w->have_sec) {
        if (!PyUnicode_Check(clock) || !PyUnicode_IS_ASCII(clock) ||
            PyUnicode_GET_LENGTH(clock) >= (Py_ssize_t)sizeof w->clock) {
            ok = 0;
            w->have_sec = 0;
        } else {
            w->clock_len = PyUnicode_GET_LENGTH(clock);
            memcpy(w->clock, PyUnicode_DATA(clock), (size_t)w->clock_len);
        }
    }
    Py_DECREF(sec);
    Py_DECREF(clock);
    w->dirty = 0;
    return ok;
}

static int tl_store_clock(tl_out *w) {
    if (!w->dirty)
        return 0;
    PyObject *sec = PyLong_FromLongLong(w->sec);
    PyObject *clock = PyUnicode_FromStringAndSize(w->clock, w->clock_len);
    int rc = -1;
    if (sec != NULL && clock != NULL && PyObject_SetAttrString(w->formatter, "_sec", sec) == 0 &&
        PyObject_SetAttrString(w->formatter, "_clock", clock) == 0)
        rc = 0;
    Py_XDECREF(sec);
    Py_XDECREF(clock);
    w->dirty = 0;
    return rc;
}

/* HH:MM:SS of `sec` in local time, as time.strftime("%H:%M:%S", time.localtime(sec)) gives it;
 * ??:??:?? when the C library cannot convert it. */
static void tl_set_second(tl_out *w, long long sec) {
    struct tm tm;
    time_t t = (time_t)sec;
    errno = 0;
    if ((long long)t != sec || localtime_r(&t, &tm) == NULL ||
        strftime(w->clock, sizeof w->clock, "%H:%M:%S", &tm) == 0) {
        memcpy(w->clock, "??:??:??", 8);
        w->clock_len = 8;
    } else {
        w->clock_len = (Py_ssize_t)strlen(w->clock);
    }
    w->sec = sec;
    w->have_sec = 1;
    w->dirty = 1;
}

/* The line of a frame at w->buf + w->len, with its time stamp; 1 when written, 0 when the
 * frame is the fallback's (nothing written), -1 on error. The clock is brought to the frame's
 * second first, as the Python formatter does for every frame. */
static int tl_line(tl_out *w, long long ts, const unsigned char *d, Py_ssize_t n, long long wire,
                   int dir, int link, int cooked) {
    if (ts < 0)
        return 0;
    if (tl_room(w, TL_LINE_ROOM + (Py_ssize_t)sizeof w->clock + 8) < 0)
        return -1;
    long long sec = ts / 1000000000LL;
    if (!w->have_sec || w->sec != sec)
        tl_set_second(w, sec);
    char *p = w->buf + w->len;
    memcpy(p, w->clock, sizeof w->clock); /* a fixed size, copied inline; room is there */
    p += w->clock_len;
    unsigned usec = (unsigned)(ts / 1000 % 1000000);
    *p++ = '.';
    for (int i = 4; i >= 0; i -= 2) {
        unsigned d = usec % 100 * 2;
        usec /= 100;
        p[i] = tl_digits[d];
        p[i + 1] = tl_digits[d + 1];
    }
    p += 6;
    *p++ = ' ';
    p = tl_frame(p, d, n, wire, dir, link, cooked);
    if (p == NULL)
        return 0;
    *p++ = '\n';
    w->len = p - w->buf;
    return 1;
}

/* The str written so far cut to its length, as a piece of w->chunks (a line that is not ASCII
 * follows); `cap` is the room of the next str. */
static int tl_flush_chunk(tl_out *w, Py_ssize_t cap) {
    if (w->chunks == NULL && (w->chunks = PyList_New(0)) == NULL)
        return -1;
    if (PyUnicode_Resize(&w->str, w->len) < 0 || PyList_Append(w->chunks, w->str) < 0)
        return -1;
    Py_CLEAR(w->str);
    return tl_new_str(w, cap);
}

/* Calls the fallback with the frame's fields (new references, stolen) and adds its line. */
static int tl_hand_over(tl_out *w, PyObject *ts, PyObject *data, PyObject *wire, PyObject *dir) {
    int rc = -1;
    PyObject *line = NULL;
    if (ts == NULL || data == NULL || wire == NULL || dir == NULL)
        goto done;
    if (tl_store_clock(w) < 0)
        goto done;
    PyObject *args[4] = {ts, data, wire, dir};
    line = PyObject_Vectorcall(w->fallback, args, 4, NULL);
    if (line == NULL)
        goto done;
    if (!PyUnicode_Check(line)) {
        PyErr_SetString(PyExc_TypeError, "a formatter returns str");
        goto done;
    }
    w->handed++;
    if (PyUnicode_IS_ASCII(line)) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(line);
        if (tl_room(w, n + 1) < 0)
            goto done;
        memcpy(w->buf + w->len, PyUnicode_DATA(line), (size_t)n);
        w->len += n;
        w->buf[w->len++] = '\n';
    } else {
        if (tl_flush_chunk(w, w->cap) < 0 || PyList_Append(w->chunks, line) < 0)
            goto done;
        w->buf[w->len++] = '\n';
    }
    if (tl_load_clock(w) < 0)
        goto done;
    rc = 0;
done:
    Py_XDECREF(ts);
    Py_XDECREF(data);
    Py_XDECREF(wire);
    Py_XDECREF(dir);
    Py_XDECREF(line);
    return rc;
}

/* (text, handed) of a finished batch, the clock written back. */
static PyObject *tl_finish(tl_out *w) {
    PyObject *text;
    if (tl_store_clock(w) < 0 || PyUnicode_Resize(&w->str, w->len) < 0)
        return NULL;
    if (w->chunks != NULL) {
        if (PyList_Append(w->chunks, w->str) < 0)
            return NULL;
        PyObject *empty = PyUnicode_New(0, 127);
        if (empty == NULL)
            return NULL;
        text = PyUnicode_Join(empty, w->chunks);
        Py_DECREF(empty);
        if (text == NULL)
            return NULL;
    } else {
        text = w->str;
        w->str = NULL;
    }
    return Py_BuildValue("Nn", text, w->handed);
}

static int tl_start(tl_out *w, PyObject *formatter, PyObject *fallback, Py_ssize_t guess) {
    memset(w, 0, sizeof *w);
    w->formatter = formatter;
    w->fallback = fallback;
    if (!TL.ready) {
        PyErr_SetString(PyExc_RuntimeError, "text_tables() was not called");
        return -1;
    }
    if (!PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "the fallback is callable");
        return -1;
    }
    if (tl_new_str(w, guess < 800 ? 65536 : guess * 80) < 0)
        return -1;
    return tl_load_clock(w);
}

static void tl_free(tl_out *w) {
    Py_XDECREF(w->str);
    Py_XDECREF(w->chunks);
}

static int tl_link_args(int link, int cooked) {
    if (link < TL_ETHER || link > TL_LOOP || cooked < 0 || cooked > TL_SLL2) {
        PyErr_SetString(PyExc_ValueError, "unknown link or cooked kind");
        return -1;
    }
    return 0;
}

/* text_records(parts, link, cooked, formatter, fallback, inbound, outbound, unknown) */
static PyObject *text_records(PyObject *self, PyObject *args) {
    PyObject *parts, *formatter, *fallback, *dirs[3];
    int link, cooked;
    if (!PyArg_ParseTuple(args, "O!iiOOOOO", &PyList_Type, &parts, &link, &cooked, &formatter,
                          &fallback, &dirs[1], &dirs[2], &dirs[0]))
        return NULL;
    if (tl_link_args(link, cooked) < 0 || check_parts(parts) < 0)
        return NULL;
    tl_out w;
    int ok = tl_start(&w, formatter, fallback, 0);
    if (ok <= 0) {
        tl_free(&w);
        if (ok < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    rec_walk it = {parts, 0, 0};
    rec_hdr r;
    const unsigned char *data;
    while ((data = rec_next(&it, &r)) != NULL) {
        int dir = r.outgoing == 1 ? 2 : r.outgoing ? 0 : 1;
        int rc = tl_line(&w, r.ts, data, (Py_ssize_t)r.caplen, r.wire, dir, link, cooked);
        if (rc == 0) {
            Py_INCREF(dirs[dir]);
            rc = tl_hand_over(&w, PyLong_FromLongLong(r.ts),
                              PyBytes_FromStringAndSize((const char *)data, r.caplen),
                              PyLong_FromUnsignedLong(r.wire), dirs[dir]) < 0 ? -1 : 1;
        }
        if (rc < 0) {
            tl_free(&w);
            return NULL;
        }
    }
    PyObject *result = tl_finish(&w);
    tl_free(&w);
    return result;
}

/* An int that fits in a long long, exactly an int (or of `also`'s type); 0 when it is not. */
static int tl_exact_ll(PyObject *obj, PyTypeObject *also, long long *out) {
    if (!PyLong_CheckExact(obj) && (also == NULL || Py_TYPE(obj) != also))
        return 0;
    int overflow = 0;
    *out = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (overflow || (*out == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

/* text_packets(batch, link, cooked, formatter, fallback, Direction): None when the batch holds
 * something that is no plain Packet tuple (Python then formats it all). */
static PyObject *text_packets(PyObject *self, PyObject *args) {
    PyObject *batch, *formatter, *fallback;
    PyTypeObject *direction_type;
    int link, cooked;
    if (!PyArg_ParseTuple(args, "O!iiOOO!", &PyList_Type, &batch, &link, &cooked, &formatter,
                          &fallback, &PyType_Type, &direction_type))
        return NULL;
    if (tl_link_args(link, cooked) < 0)
        return NULL;
    /* a copy of the list: the fallback runs Python code, which must not change what is read */
    PyObject *items = PyList_GetSlice(batch, 0, PyList_GET_SIZE(batch));
    if (items == NULL)
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(items);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *p = PyList_GET_ITEM(items, i);
        /* p[0] .. p[3] as Python reads them: a tuple's own items */
        if (!PyTuple_Check(p) || PyTuple_GET_SIZE(p) < 4 ||
            Py_TYPE(p)->tp_as_mapping == NULL ||
            Py_TYPE(p)->tp_as_mapping->mp_subscript != PyTuple_Type.tp_as_mapping->mp_subscript) {
            Py_DECREF(items);
            Py_RETURN_NONE;
        }
    }
    tl_out w;
    int ok = tl_start(&w, formatter, fallback, count);
    if (ok <= 0) {
        tl_free(&w);
        Py_DECREF(items);
        if (ok < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *p = PyList_GET_ITEM(items, i);
        PyObject *ts_obj = PyTuple_GET_ITEM(p, 0), *data = PyTuple_GET_ITEM(p, 1);
        PyObject *wire_obj = PyTuple_GET_ITEM(p, 2), *dir_obj = PyTuple_GET_ITEM(p, 3);
        long long ts, wire, dir;
        int rc = 0;
        if (tl_exact_ll(ts_obj, NULL, &ts) && PyBytes_CheckExact(data) &&
            tl_exact_ll(wire_obj, NULL, &wire) && tl_exact_ll(dir_obj, direction_type, &dir))
            rc = tl_line(&w, ts, (const unsigned char *)PyBytes_AS_STRING(data),
                         PyBytes_GET_SIZE(data), wire, dir >= 0 && dir <= 2 ? (int)dir : 0,
                         link, cooked);
        if (rc == 0) {
            Py_INCREF(ts_obj);
            Py_INCREF(data);
            Py_INCREF(wire_obj);
            Py_INCREF(dir_obj);
            rc = tl_hand_over(&w, ts_obj, data, wire_obj, dir_obj) < 0 ? -1 : 1;
        }
        if (rc < 0) {
            tl_free(&w);
            Py_DECREF(items);
            return NULL;
        }
    }
    Py_DECREF(items);
    PyObject *result = tl_finish(&w);
    tl_free(&w);
    return result;
}

/* One table entry from a str of at most 23 ASCII characters. */
static int tl_entry(PyObject *s, tl_text *t) {
    if (s == Py_None) {
        t->len = 0;
        return 0;
    }
    if (!PyUnicode_Check(s) || !PyUnicode_IS_ASCII(s) || PyUnicode_GET_LENGTH(s) >= 24) {
        PyErr_SetString(PyExc_ValueError, "a table entry is a short ASCII str or None");
        return -1;
    }
    t->len = (unsigned char)PyUnicode_GET_LENGTH(s);
    memcpy(t->text, PyUnicode_DATA(s), t->len);
    return 0;
}

static int tl_entries(PyObject *seq, tl_text *t, Py_ssize_t n) {
    if (!PyTuple_Check(seq) || PyTuple_GET_SIZE(seq) != n) {
        PyErr_Format(PyExc_ValueError, "a table is a tuple of %zd entries", n);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (tl_entry(PyTuple_GET_ITEM(seq, i), &t[i]) < 0)
            return -1;
    return 0;
}

static int tl_bytes(PyObject *b, unsigned char *dst, Py_ssize_t n) {
    if (!PyBytes_Check(b) || PyBytes_GET_SIZE(b) != n) {
        PyErr_Format(PyExc_ValueError, "a table is bytes of length %zd", n);
        return -1;
    }
    memcpy(dst, PyBytes_AS_STRING(b), (size_t)n);
    return 0;
}

/* Up to `max` unsigned numbers below `top` from a tuple into `dst`; their count, or -1. */
static int tl_numbers(PyObject *seq, uint32_t *dst, int max, unsigned long long top) {
    if (!PyTuple_Check(seq) || PyTuple_GET_SIZE(seq) > max) {
        PyErr_Format(PyExc_ValueError, "a tuple of at most %d numbers", max);
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(seq); i++) {
        unsigned long long v = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(seq, i));
        if (v == (unsigned long long)-1 && PyErr_Occurred())
            return -1;
        if (v >= top) {
            PyErr_SetString(PyExc_ValueError, "a number out of range");
            return -1;
        }
        dst[i] = (uint32_t)v;
    }
    return (int)PyTuple_GET_SIZE(seq);
}

/* text_tables(flags, icmp, icmp6, tags, annotated, tcp_ports, udp_ports, vlan_tpids,
 *             quic_versions) */
static PyObject *text_tables(PyObject *self, PyObject *args) {
    PyObject *flags, *icmp, *icmp6, *tags, *annotated, *tcp_ports, *udp_ports, *vlan, *quic;
    if (!PyArg_ParseTuple(args, "OOOOOOOOO", &flags, &icmp, &icmp6, &tags, &annotated,
                          &tcp_ports, &udp_ports, &vlan, &quic))
        return NULL;
    TL.ready = 0;
    if (tl_entries(flags, TL.flags, 256) < 0 || tl_entries(icmp, TL.icmp, 256) < 0 ||
        tl_entries(icmp6, TL.icmp6, 256) < 0 || tl_entries(tags, &TL.tags[0][0], 12) < 0 ||
        tl_bytes(annotated, TL.annotated, 256) < 0 ||
        tl_bytes(tcp_ports, TL.tcp_ports, 65536) < 0 ||
        tl_bytes(udp_ports, TL.udp_ports, 65536) < 0)
        return NULL;
    uint32_t tpids[8];
    int nvlan = tl_numbers(vlan, tpids, 8, 0x10000), nquic = tl_numbers(quic, TL.quic_versions, 8,
                                                                        1ULL << 32);
    if (nvlan < 0 || nquic < 0)
        return NULL;
    for (int i = 0; i < nvlan; i++) {
        if (tpids[i] < 0x0600) {
            PyErr_SetString(PyExc_ValueError, "a VLAN tag type is an ethertype");
            return NULL;
        }
        TL.vlan[i] = (uint16_t)tpids[i];
    }
    TL.nvlan = nvlan;
    TL.nquic = nquic;
    TL.ready = 1;
    Py_RETURN_NONE;
}
