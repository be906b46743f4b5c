// The live stream's decoding: a pcap byte stream into records, each summarised on one line
// (Ethernet with VLAN tags, raw IP, Linux cooked v1/v2, BSD loopback; IPv4, IPv6, ARP, TCP,
// UDP, SCTP, ICMP). A frame that cannot be read shows as "???".

export class PcapReader {
  constructor(onPacket) {
    this.onPacket = onPacket;
    this.buf = new Uint8Array(0);
    this.header = null;
  }

  push(chunk) {
    const joined = new Uint8Array(this.buf.length + chunk.length);
    joined.set(this.buf);
    joined.set(chunk, this.buf.length);
    let pos = 0;
    const view = new DataView(joined.buffer);
    if (!this.header) {
      if (joined.length < 24) { this.buf = joined; return; }
      const magic = view.getUint32(0, true);
      const little = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
      const nano = magic === 0xa1b23c4d || magic === 0x4d3cb2a1;
      this.header = { little, nano, linktype: view.getUint32(20, little) & 0x03ffffff };
      pos = 24;
    }
    const { little, nano, linktype } = this.header;
    while (pos + 16 <= joined.length) {
      const incl = view.getUint32(pos + 8, little);
      if (pos + 16 + incl > joined.length) break;
      const sec = view.getUint32(pos, little);
      const frac = view.getUint32(pos + 4, little);
      this.onPacket({
        sec,
        usec: nano ? Math.floor(frac / 1000) : frac,
        wire: view.getUint32(pos + 12, little),
        data: joined.subarray(pos + 16, pos + 16 + incl),
      }, linktype);
      pos += 16 + incl;
    }
    this.buf = joined.slice(pos);
  }
}

function ipv4(d, o) {
  return `${d[o]}.${d[o + 1]}.${d[o + 2]}.${d[o + 3]}`;
}

function ipv6(d, o) {
  const words = [];
  for (let i = 0; i < 16; i += 2) words.push(((d[o + i] << 8) | d[o + i + 1]).toString(16));
  const text = words.join(":");
  const runs = text.match(/(^|:)0(:0)+(:|$)/g);
  if (!runs) return text;
  const longest = runs.reduce((a, b) => (b.length > a.length ? b : a));
  return text.replace(longest, "::");
}

const PROTOCOLS = { 1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMP6", 132: "SCTP" };

function transport(d, o, proto, src, dst) {
  const name = PROTOCOLS[proto] || `proto ${proto}`;
  if ((proto === 6 || proto === 17 || proto === 132) && o + 4 <= d.length) {
    const sport = (d[o] << 8) | d[o + 1];
    const dport = (d[o + 2] << 8) | d[o + 3];
    let flags = "";
    if (proto === 6 && o + 14 <= d.length) {
      const f = d[o + 13];
      flags = " [" + [[2, "S"], [16, "."], [1, "F"], [4, "R"], [8, "P"]]
        .filter(([bit]) => f & bit).map(([, c]) => c).join("") + "]";
    }
    return `${name} ${src}.${sport} > ${dst}.${dport}${flags}`;
  }
  if ((proto === 1 || proto === 58) && o < d.length) return `${name} ${src} > ${dst} type ${d[o]}`;
  return `${name} ${src} > ${dst}`;
}

function network(d, o, ethertype) {
  if (ethertype === 0x0800 && o + 20 <= d.length) {
    const ihl = (d[o] & 0x0f) * 4;
    return transport(d, o + ihl, d[o + 9], ipv4(d, o + 12), ipv4(d, o + 16));
  }
  if (ethertype === 0x86dd && o + 40 <= d.length) {
    return transport(d, o + 40, d[o + 6], ipv6(d, o + 8), ipv6(d, o + 24));
  }
  if (ethertype === 0x0806 && o + 28 <= d.length) {
    const op = (d[o + 6] << 8) | d[o + 7];
    return op === 1 ? `ARP who-has ${ipv4(d, o + 24)} tell ${ipv4(d, o + 14)}` :
      `ARP reply ${ipv4(d, o + 14)}`;
  }
  return `ethertype 0x${ethertype.toString(16).padStart(4, "0")}`;
}

function summary(d, linktype) {
  const u16 = (o) => (d[o] << 8) | d[o + 1];
  switch (linktype) {
    case 1: { // Ethernet, with VLAN tags skipped
      let o = 12;
      let type = u16(o);
      while ((type === 0x8100 || type === 0x88a8) && o + 6 <= d.length) {
        o += 4;
        type = u16(o);
      }
      return network(d, o + 2, type);
    }
    case 101: case 228: case 229: // raw IP
      return network(d, 0, (d[0] >> 4) === 6 ? 0x86dd : 0x0800);
    case 113: return network(d, 16, u16(14)); // Linux cooked v1
    case 276: return network(d, 20, u16(0)); // Linux cooked v2
    case 0: case 108: { // BSD loopback: address family, host or network order
      const family = d[0] || d[3];
      return network(d, 4, family === 2 ? 0x0800 : 0x86dd);
    }
    default: return `link type ${linktype}`;
  }
}

export function formatPacket(pkt, linktype) {
  const d = new Date(pkt.sec * 1000);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(pkt.usec, 6)}`;
  let text;
  try {
    text = pkt.data.length >= 14 || linktype !== 1 ? summary(pkt.data, linktype) : "???";
  } catch (_) {
    text = "???";
  }
  return `${time} ${text}, length ${pkt.wire}`;
}
