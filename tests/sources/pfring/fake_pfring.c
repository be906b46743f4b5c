/*
 * An ABI-faithful stand-in for libpfring (PF_RING 8.x, x86_64), built by the tests only.
 *
 * It exports the libpfring functions capsvc binds with their real C signatures, enum values,
 * return codes and the packed 209-byte struct pfring_pkthdr, and serves packets from a pcap
 * file instead of a kernel ring. Every call is appended as one line to the file named by
 * CAPSVC_FAKE_PFRING_LOG ("name key=value ... -> rc"), so the tests see exactly what the
 * binding passed.
 *
 * Where the real library (libpfring 8.9 built from ../shared/pfring, whose pcap: module the
 * tests also run) can be observed here, the stand-in answers as it does:
 *   - "pcap:/path/file.pcap" is the pcap: module reading a file: a copy read (buffer_len > 0)
 *     fills the header and the buffer and returns 0, a zero-copy read returns 1; the header's
 *     caplen is the file's (the snaplen is not applied; only the copy is cut); the end of the
 *     file is -2 (INVALID_ARGUMENT) for zero copy, with the last packet's header left in place,
 *     and 0 with an empty header for copy reads; no selectable fd (-1); pfring_poll returns 1
 *     at once; NOT_SUPPORTED (-7) for stats, direction, clusters, disable, removing a filter,
 *     the application name and send; the sampling rate is accepted (0) and ignored; socket
 *     modes other than recv_only are -1; the extended header stays zero.
 *   - a bad BPF filter is -2 (the module's -1, then libpfring's userspace parser's -2);
 *     pfring_open clamps caplen to MAX_CAPLEN (65600); a pcap: name that cannot be opened
 *     fails with ENODEV; recv before enable is -12, zero copy on a REENTRANT ring -2;
 *     send before enable is -12, on a recv_only ring -7; stats before enable are zeros.
 * Not emulated: a live pcap:IFACE (only the real library's tests cover it), and the real
 * library's fallback to a userspace filter for an expression the module cannot compile.
 *
 * Any other device name behaves like a kernel ring, which only the stand-in can cover here (the
 * pf_ring kernel module cannot be loaded): it serves the file named by CAPSVC_FAKE_PFRING_PCAP,
 * and without that variable pfring_open fails with EAFNOSUPPORT, as without the kernel module.
 * Kernel rings fill the extended header: rx_direction 1 (received) for the file's even packets
 * and 0 (transmitted) for odd ones, if_index, pkt_hash; the long header's last 161 bytes with
 * LONG_HEADER; clusters, directions and the sampling rate are accepted and sampling applied;
 * pfring_stats counts delivered packets; the selectable fd is readable while packets wait; a
 * copy read cuts the copy, not the header's caplen, to buffer_len (as the kernel module does).
 * Reads with wait_for_incoming_packet return 0 when the file is used up (a real ring would
 * wait), and pfring_poll sleeps its whole wait then.
 *
 * Other switches (environment, read when used):
 *   CAPSVC_FAKE_PFRING_NO_FD=1         pfring_get_selectable_fd returns -1
 *   CAPSVC_FAKE_PFRING_TIMESTAMP_NS=1  fill extended_hdr.timestamp_ns (kernel rings only)
 *   CAPSVC_FAKE_PFRING_IFINDEX=N       extended_hdr.if_index (kernel rings only; default 42)
 *   CAPSVC_FAKE_PFRING_DROPS=N         the drop counter pfring_stats reports
 *
 * BPF filters are compiled and run with libpcap, whose symbols are left unresolved here on
 * purpose: like real libpfring builds, this library loads only after libpcap was loaded
 * with RTLD_GLOBAL.
 */
#include <errno.h>
#include <pcap/pcap.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define PF_RING_ERROR_GENERIC -1
#define PF_RING_ERROR_INVALID_ARGUMENT -2
#define PF_RING_ERROR_NO_PKT_AVAILABLE -3
#define PF_RING_ERROR_NO_TX_SLOT_AVAILABLE -4
#define PF_RING_ERROR_NOT_SUPPORTED -7
#define PF_RING_ERROR_RING_NOT_ENABLED -12
#define PF_RING_ERROR_MOD_NOT_LOADED -14

#define PF_RING_ZC_SYMMETRIC_RSS (1 << 0)
#define PF_RING_REENTRANT (1 << 1)
#define PF_RING_LONG_HEADER (1 << 2)
#define PF_RING_PROMISC (1 << 3)
#define PF_RING_TIMESTAMP (1 << 4)
#define PF_RING_HW_TIMESTAMP (1 << 5)

#define SHORT_HEADER_BYTES 48
#define PCAP_HEADER_BYTES 24 /* struct pcap_pkthdr: what the pcap: module fills */
#define MAX_CAPLEN 65600

typedef enum {
  cluster_per_flow = 0,
  cluster_round_robin,
  cluster_per_flow_2_tuple,
  cluster_per_flow_4_tuple,
  cluster_per_flow_5_tuple,
  cluster_per_flow_tcp_5_tuple,
  cluster_per_inner_flow,
  cluster_per_inner_flow_2_tuple,
  cluster_per_inner_flow_4_tuple,
  cluster_per_inner_flow_5_tuple,
  cluster_per_inner_flow_tcp_5_tuple,
  cluster_per_flow_ip_5_tuple,
  cluster_per_inner_flow_ip_5_tuple,
  cluster_per_flow_ip_with_dup_tuple
} cluster_type;

typedef enum { rx_and_tx_direction = 0, rx_only_direction, tx_only_direction } packet_direction;

typedef enum {
  send_and_recv_mode = 0,
  send_only_mode,
  recv_only_mode,
  management_only_mode
} socket_mode;

typedef struct {
  u_int64_t recv;
  u_int64_t drop;
  u_int64_t shunt;
} pfring_stat;

struct pfring_extended_pkthdr {
  u_int64_t timestamp_ns;
  u_int32_t flags;
  u_int8_t rx_direction;
  u_int8_t port_id;
  u_int16_t device_id;
  int32_t if_index;
  u_int32_t pkt_hash;
  u_int8_t long_part[161]; /* tx, process, parsed_pkt: long header only */
} __attribute__((packed));

struct pfring_pkthdr {
  struct timeval ts;
  u_int32_t caplen;
  u_int32_t len;
  struct pfring_extended_pkthdr extended_hdr;
} __attribute__((packed));

_Static_assert(sizeof(struct pfring_pkthdr) == 209, "pfring_pkthdr is 209 bytes in 8.2-8.9");
_Static_assert(offsetof(struct pfring_pkthdr, caplen) == 16, "caplen @16");
_Static_assert(offsetof(struct pfring_pkthdr, len) == 20, "len @20");
_Static_assert(offsetof(struct pfring_pkthdr, extended_hdr.timestamp_ns) == 24, "ts_ns @24");
_Static_assert(offsetof(struct pfring_pkthdr, extended_hdr.rx_direction) == 36, "rx_dir @36");
_Static_assert(offsetof(struct pfring_pkthdr, extended_hdr.if_index) == 40, "if_index @40");
_Static_assert(offsetof(struct pfring_pkthdr, extended_hdr.pkt_hash) == 44, "pkt_hash @44");
_Static_assert(sizeof(pfring_stat) == 24, "pfring_stat is 24 bytes");

struct fake_packet {
  u_int32_t sec, nsec, incl, orig;
  u_char *data;
};

typedef struct pfring {
  char device[256];
  int pcap_module;
  u_int32_t caplen, flags;
  int enabled, efd, signalled;
  socket_mode mode;
  u_int32_t sampling_rate;
  int linktype, has_filter;
  struct bpf_program prog;
  struct fake_packet *pkts;
  size_t npkts, next;
  u_int64_t seen, served;
  struct pfring_pkthdr last; /* the pcap: module's last header, left in place at its EOF */
} pfring;

static void log_call(const char *fmt, ...) {
  const char *path = getenv("CAPSVC_FAKE_PFRING_LOG");
  if (path == NULL || *path == '\0') return;
  FILE *f = fopen(path, "a");
  if (f == NULL) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(f, fmt, ap);
  va_end(ap);
  fputc('\n', f);
  fclose(f);
}

static int env_int(const char *name, int fallback) {
  const char *value = getenv(name);
  return value != NULL && *value != '\0' ? atoi(value) : fallback;
}

static u_int32_t swap32(u_int32_t v) { return __builtin_bswap32(v); }

/* Load a whole pcap file (either byte order, micro- or nanosecond magic). */
static int load_pcap(pfring *ring, const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return -1;
  u_int32_t gh[6];
  if (fread(gh, 4, 6, f) != 6) {
    fclose(f);
    errno = EINVAL;
    return -1;
  }
  int swapped = 0, nano = 0;
  switch (gh[0]) {
    case 0xa1b2c3d4: break;
    case 0xa1b23c4d: nano = 1; break;
    case 0xd4c3b2a1: swapped = 1; break;
    case 0x4d3cb2a1: swapped = nano = 1; break;
    default:
      fclose(f);
      errno = EINVAL;
      return -1;
  }
  ring->linktype = (int)(swapped ? swap32(gh[5]) : gh[5]) & 0xffff;
  size_t cap = 0;
  u_int32_t rec[4];
  while (fread(rec, 4, 4, f) == 4) {
    if (swapped)
      for (int i = 0; i < 4; i++) rec[i] = swap32(rec[i]);
    if (rec[2] > 0x4000000) break;
    if (ring->npkts == cap) {
      cap = cap ? cap * 2 : 64;
      ring->pkts = realloc(ring->pkts, cap * sizeof *ring->pkts);
    }
    struct fake_packet *p = &ring->pkts[ring->npkts];
    p->sec = rec[0];
    p->nsec = nano ? rec[1] : rec[1] * 1000;
    p->incl = rec[2];
    p->orig = rec[3];
    p->data = malloc(rec[2] ? rec[2] : 1);
    if (fread(p->data, 1, rec[2], f) != rec[2]) {
      free(p->data);
      break;
    }
    ring->npkts++;
  }
  fclose(f);
  return 0;
}

static int passes_filter(pfring *ring, struct fake_packet *p) {
  if (!ring->has_filter) return 1;
  struct pcap_pkthdr h;
  h.ts.tv_sec = p->sec;
  h.ts.tv_usec = p->nsec / 1000;
  h.caplen = p->incl;
  h.len = p->orig;
  return pcap_offline_filter(&ring->prog, &h, p->data) != 0;
}

/* Move `next` to the next packet the ring delivers (BPF filter, then 1-in-N sampling, which
 * only the kernel module applies). */
static void advance(pfring *ring) {
  if (!ring->enabled) return; /* a disabled ring sees no traffic; nothing is skipped yet */
  while (ring->next < ring->npkts) {
    struct fake_packet *p = &ring->pkts[ring->next];
    if (!passes_filter(ring, p)) {
      ring->next++;
      continue;
    }
    if (!ring->pcap_module && ring->sampling_rate > 1 && ring->seen % ring->sampling_rate != 0) {
      ring->seen++;
      ring->next++;
      continue;
    }
    break;
  }
}

/* The selectable fd is readable exactly while an enabled ring has a packet to deliver. */
static void update_fd(pfring *ring) {
  int want = ring->enabled && ring->next < ring->npkts;
  u_int64_t value = 1;
  if (want && !ring->signalled) {
    if (write(ring->efd, &value, sizeof value) == sizeof value) ring->signalled = 1;
  } else if (!want && ring->signalled) {
    if (read(ring->efd, &value, sizeof value) == sizeof value) ring->signalled = 0;
  }
}

static void refresh(pfring *ring) {
  advance(ring);
  update_fd(ring);
}

pfring *pfring_open(const char *device_name, u_int32_t caplen, u_int32_t flags) {
  const char *path;
  pfring *ring;
  int pcap_module = strncmp(device_name, "pcap:", 5) == 0;
  if (caplen > MAX_CAPLEN) caplen = MAX_CAPLEN;
  path = pcap_module ? device_name + 5 : getenv("CAPSVC_FAKE_PFRING_PCAP");
  if (path == NULL || *path == '\0') {
    errno = EAFNOSUPPORT;
    log_call("pfring_open device=%s caplen=%u flags=%u -> NULL errno=%d", device_name, caplen,
             flags, errno);
    return NULL;
  }
  ring = calloc(1, sizeof *ring);
  snprintf(ring->device, sizeof ring->device, "%s", device_name);
  ring->pcap_module = pcap_module;
  ring->caplen = caplen;
  ring->flags = flags;
  ring->sampling_rate = 1;
  ring->mode = send_and_recv_mode;
  ring->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (load_pcap(ring, path) != 0) {
    /* libpfring reports any failure of the pcap: module as ENODEV, a missing file too */
    int saved = pcap_module ? ENODEV : errno;
    for (size_t i = 0; i < ring->npkts; i++) free(ring->pkts[i].data);
    close(ring->efd);
    free(ring->pkts);
    free(ring);
    errno = saved;
    log_call("pfring_open device=%s caplen=%u flags=%u -> NULL errno=%d", device_name, caplen,
             flags, saved);
    return NULL;
  }
  log_call("pfring_open device=%s caplen=%u flags=%u -> ok", device_name, caplen, flags);
  return ring;
}

void pfring_close(pfring *ring) {
  log_call("pfring_close served=%llu", (unsigned long long)ring->served);
  for (size_t i = 0; i < ring->npkts; i++) free(ring->pkts[i].data);
  free(ring->pkts);
  if (ring->has_filter) pcap_freecode(&ring->prog);
  close(ring->efd);
  memset(ring, 0xdd, sizeof *ring);
  free(ring);
}

int pfring_enable_ring(pfring *ring) {
  ring->enabled = 1;
  refresh(ring);
  log_call("pfring_enable_ring -> 0");
  return 0;
}

int pfring_disable_ring(pfring *ring) {
  int rc = ring->pcap_module ? PF_RING_ERROR_NOT_SUPPORTED : 0;
  if (rc == 0) ring->enabled = 0;
  refresh(ring);
  log_call("pfring_disable_ring -> %d", rc);
  return rc;
}

int pfring_set_bpf_filter(pfring *ring, const char *filter_buffer) {
  struct bpf_program prog;
  /* pcap files carry LINKTYPE_ values; pcap_open_dead wants DLT_ ones (they differ for RAW) */
  pcap_t *dead = pcap_open_dead(ring->linktype == 101 ? DLT_RAW : ring->linktype, 65535);
  int rc = pcap_compile(dead, &prog, filter_buffer, 1, PCAP_NETMASK_UNKNOWN);
  pcap_close(dead);
  if (rc != 0) {
    /* the module's -1 sends libpfring to its userspace parser, which answers -2 */
    log_call("pfring_set_bpf_filter filter=%s -> %d", filter_buffer,
             PF_RING_ERROR_INVALID_ARGUMENT);
    return PF_RING_ERROR_INVALID_ARGUMENT;
  }
  if (ring->has_filter) pcap_freecode(&ring->prog);
  ring->prog = prog;
  ring->has_filter = 1;
  refresh(ring);
  log_call("pfring_set_bpf_filter filter=%s -> 0", filter_buffer);
  return 0;
}

int pfring_remove_bpf_filter(pfring *ring) {
  int rc = ring->pcap_module ? PF_RING_ERROR_NOT_SUPPORTED : 0;
  if (rc == 0) {
    if (ring->has_filter) pcap_freecode(&ring->prog);
    ring->has_filter = 0;
    refresh(ring);
  }
  log_call("pfring_remove_bpf_filter -> %d", rc);
  return rc;
}

int pfring_set_cluster(pfring *ring, u_int clusterId, cluster_type the_type) {
  int rc = ring->pcap_module ? PF_RING_ERROR_NOT_SUPPORTED : 0;
  log_call("pfring_set_cluster cluster=%u type=%d -> %d", clusterId, (int)the_type, rc);
  return rc;
}

int pfring_remove_from_cluster(pfring *ring) {
  int rc = ring->pcap_module ? PF_RING_ERROR_NOT_SUPPORTED : 0;
  log_call("pfring_remove_from_cluster -> %d", rc);
  return rc;
}

int pfring_set_direction(pfring *ring, packet_direction direction) {
  int rc = ring->pcap_module ? PF_RING_ERROR_NOT_SUPPORTED : 0;
  log_call("pfring_set_direction direction=%d -> %d", (int)direction, rc);
  return rc;
}

int pfring_set_socket_mode(pfring *ring, socket_mode mode) {
  int rc = 0;
  if (ring->enabled)
    rc = PF_RING_ERROR_GENERIC; /* libpfring: modes are set before enabling */
  else if (ring->pcap_module && mode != recv_only_mode)
    rc = PF_RING_ERROR_GENERIC; /* the pcap: module only reads */
  if (rc == 0) ring->mode = mode;
  log_call("pfring_set_socket_mode mode=%d -> %d", (int)mode, rc);
  return rc;
}

int pfring_set_sampling_rate(pfring *ring, u_int32_t rate) {
  /* libpfring stores the rate and returns 0 where the module has no setter (pcap:), whose
   * reads then ignore it */
  ring->sampling_rate = rate;
  refresh(ring);
  log_call("pfring_set_sampling_rate rate=%u -> 0", rate);
  return 0;
}

int pfring_set_application_name(pfring *ring, char *name) {
  int rc = ring->pcap_module ? PF_RING_ERROR_NOT_SUPPORTED : 0;
  log_call("pfring_set_application_name name=%s -> %d", name, rc);
  return rc;
}

static void log_recv(u_int buffer_len, u_int8_t wait, int rc, const struct pfring_pkthdr *h) {
  if (h == NULL)
    log_call("pfring_recv buffer_len=%u wait=%u -> %d", buffer_len, (unsigned)wait, rc);
  else
    log_call("pfring_recv buffer_len=%u wait=%u -> %d caplen=%u len=%u", buffer_len,
             (unsigned)wait, rc, h->caplen, h->len);
}

/* The pcap: module reading a file: libpcap's pcap_next (copy) or pcap_next_ex (zero copy). */
static int pcap_module_recv(pfring *ring, u_char **buffer, u_int buffer_len,
                            struct pfring_pkthdr *hdr, u_int8_t wait) {
  memset(hdr, 0, sizeof *hdr);
  advance(ring);
  if (ring->next >= ring->npkts) { /* end of file */
    if (buffer_len > 0) {
      log_recv(buffer_len, wait, 0, NULL);
      return 0;
    }
    memcpy(hdr, &ring->last, PCAP_HEADER_BYTES);
    log_recv(buffer_len, wait, PF_RING_ERROR_INVALID_ARGUMENT, NULL);
    return PF_RING_ERROR_INVALID_ARGUMENT;
  }
  struct fake_packet *p = &ring->pkts[ring->next];
  hdr->ts.tv_sec = p->sec;
  hdr->ts.tv_usec = p->nsec / 1000;
  hdr->caplen = p->incl; /* the file's: the ring's caplen is not applied */
  hdr->len = p->orig;
  memcpy(&ring->last, hdr, PCAP_HEADER_BYTES);
  int rc;
  if (buffer_len > 0) {
    u_int32_t len = p->incl;
    if (len > ring->caplen) len = ring->caplen;
    if (len > buffer_len) len = buffer_len;
    memcpy(*buffer, p->data, len);
    rc = 0; /* a packet, and still 0 */
  } else {
    *buffer = p->data;
    rc = 1;
  }
  ring->next++;
  ring->served++;
  log_recv(buffer_len, wait, rc, hdr);
  return rc;
}

int pfring_recv(pfring *ring, u_char **buffer, u_int buffer_len, struct pfring_pkthdr *hdr,
                u_int8_t wait_for_incoming_packet) {
  int rc;
  if (!ring->enabled) {
    rc = PF_RING_ERROR_RING_NOT_ENABLED;
  } else if (ring->mode == send_only_mode) {
    rc = PF_RING_ERROR_NOT_SUPPORTED;
  } else if (buffer_len == 0 && (ring->flags & PF_RING_REENTRANT)) {
    rc = PF_RING_ERROR_INVALID_ARGUMENT;
  } else if (ring->pcap_module) {
    return pcap_module_recv(ring, buffer, buffer_len, hdr, wait_for_incoming_packet);
  } else {
    advance(ring);
    rc = ring->next < ring->npkts ? 1 : 0;
  }
  if (rc != 1) {
    log_recv(buffer_len, wait_for_incoming_packet, rc, NULL);
    return rc;
  }
  struct fake_packet *p = &ring->pkts[ring->next];
  u_int32_t cap = p->incl < ring->caplen ? p->incl : ring->caplen;
  if (buffer_len == 0)
    *buffer = p->data;
  else
    memcpy(*buffer, p->data, cap < buffer_len ? cap : buffer_len); /* the header keeps cap */
  struct pfring_pkthdr h;
  memset(&h, 0, sizeof h);
  h.ts.tv_sec = p->sec;
  h.ts.tv_usec = p->nsec / 1000;
  h.caplen = cap;
  h.len = p->orig;
  if (env_int("CAPSVC_FAKE_PFRING_TIMESTAMP_NS", 0))
    h.extended_hdr.timestamp_ns = (u_int64_t)p->sec * 1000000000ULL + p->nsec;
  h.extended_hdr.rx_direction = ring->next % 2 == 0; /* 1 = received, 0 = transmitted */
  h.extended_hdr.if_index = env_int("CAPSVC_FAKE_PFRING_IFINDEX", 42);
  h.extended_hdr.pkt_hash = (u_int32_t)ring->next;
  int long_header = (ring->flags & PF_RING_LONG_HEADER) != 0;
  if (long_header) memset(h.extended_hdr.long_part, 0xa5, sizeof h.extended_hdr.long_part);
  memcpy(hdr, &h, long_header ? sizeof h : SHORT_HEADER_BYTES);
  ring->seen++;
  ring->next++;
  ring->served++;
  refresh(ring);
  log_recv(buffer_len, wait_for_incoming_packet, 1, &h);
  return 1;
}

int pfring_send(pfring *ring, char *pkt, u_int pkt_len, u_int8_t flush_packet) {
  int rc;
  if (!ring->enabled)
    rc = PF_RING_ERROR_RING_NOT_ENABLED;
  else if (ring->pcap_module || ring->mode == recv_only_mode)
    rc = PF_RING_ERROR_NOT_SUPPORTED;
  else
    rc = (int)pkt_len;
  char hex[2 * 16 + 1] = "";
  for (u_int i = 0; i < pkt_len && i < 16; i++)
    snprintf(hex + 2 * i, 3, "%02x", (unsigned char)pkt[i]);
  log_call("pfring_send len=%u flush=%u head=%s -> %d", pkt_len, (unsigned)flush_packet, hex, rc);
  return rc;
}

int pfring_stats(pfring *ring, pfring_stat *stats) {
  if (ring->pcap_module) {
    log_call("pfring_stats -> %d", PF_RING_ERROR_NOT_SUPPORTED);
    return PF_RING_ERROR_NOT_SUPPORTED;
  }
  if (!ring->enabled) { /* libpfring answers zeros for a ring that is not enabled */
    memset(stats, 0, sizeof *stats);
    log_call("pfring_stats -> 0 recv=0 drop=0");
    return 0;
  }
  stats->recv = ring->served;
  stats->drop = (u_int64_t)env_int("CAPSVC_FAKE_PFRING_DROPS", 0);
  stats->shunt = 0;
  log_call("pfring_stats -> 0 recv=%llu drop=%llu", (unsigned long long)stats->recv,
           (unsigned long long)stats->drop);
  return 0;
}

int pfring_get_selectable_fd(pfring *ring) {
  int fd = ring->pcap_module || env_int("CAPSVC_FAKE_PFRING_NO_FD", 0) ? -1 : ring->efd;
  log_call("pfring_get_selectable_fd -> %d", fd);
  return fd;
}

int pfring_poll(pfring *ring, u_int wait_duration) {
  if (ring->pcap_module) { /* a file is always ready, even at its end */
    log_call("pfring_poll wait=%u -> 1", wait_duration);
    return 1;
  }
  advance(ring);
  int rc = ring->enabled && ring->next < ring->npkts ? 1 : 0;
  log_call("pfring_poll wait=%u -> %d", wait_duration, rc);
  if (rc == 0 && wait_duration > 0) {
    struct timespec ts = {(time_t)(wait_duration / 1000), (long)(wait_duration % 1000) * 1000000L};
    nanosleep(&ts, NULL);
  }
  return rc;
}

int pfring_version(pfring *ring, u_int32_t *version) {
  (void)ring;
  *version = (8u << 16) | (9u << 8) | 0u;
  log_call("pfring_version -> 0");
  return 0;
}

void pfring_version_noring(u_int32_t *version) { *version = (8u << 16) | (9u << 8) | 0u; }

void pfring_breakloop(pfring *ring) {
  (void)ring;
  log_call("pfring_breakloop");
}
