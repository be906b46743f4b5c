"""Service names and IP protocol numbers of the filter language, the same on every host.

Pure data. ``port http``, ``tcp port ssh``, ``portrange ftp-data-ftp`` and ``ip proto ospf`` are
resolved here, never through the host's /etc/services or /etc/protocols, so an expression means
the same wherever it is compiled. The entries are IANA's assignments as the netbase package lists
them (names and aliases). A service is listed for TCP, UDP or both, and that decides what a name
means as libpcap reads it: ``port ssh`` (TCP only) is ``tcp port 22``, ``port domain`` (both) is
``port 53``, and ``udp port ssh`` is an error.
"""

from __future__ import annotations

__all__ = ["PROTOCOLS", "SERVICES"]

# name/port for TCP and UDP alike, name/portt for TCP only, name/portu for UDP only,
# name/portt/portu when the two differ.
_SERVICES = """
tcpmux/1t echo/7 discard/9 sink/9 null/9 systat/11t users/11t daytime/13 netstat/15t qotd/17t
quote/17t chargen/19 ttytst/19 source/19 ftp-data/20t ftp/21t fsp/21u fspd/21u ssh/22t
telnet/23t smtp/25t mail/25t time/37 timserver/37 whois/43t nicname/43t tacacs/49 domain/53
bootps/67u bootpc/68u tftp/69u gopher/70t finger/79t http/80t www/80t kerberos/88 kerberos5/88
krb5/88 kerberos-sec/88 iso-tsap/102t tsap/102t acr-nema/104t dicom/104t pop3/110t pop-3/110t
sunrpc/111 portmapper/111 auth/113t authentication/113t tap/113t ident/113t nntp/119t
readnews/119t untp/119t ntp/123u epmap/135t loc-srv/135t netbios-ns/137u netbios-dgm/138u
netbios-ssn/139t imap2/143t imap/143t snmp/161 snmp-trap/162 snmptrap/162 cmip-man/163
cmip-agent/164 mailq/174t xdmcp/177u bgp/179t smux/199t qmtp/209t z3950/210t wais/210t ipx/213u
ptp-event/319u ptp-general/320u pawserv/345t zserv/346t rpc2portmap/369 codaauth2/370
clearcase/371u Clearcase/371u ldap/389 svrloc/427 https/443 snpp/444t microsoft-ds/445t
kpasswd/464 submissions/465t ssmtp/465t smtps/465t urd/465t saft/487t isakmp/500u rtsp/554
nqs/607t asf-rmcp/623u qmqp/628t ipp/631t ldp/646 exec/512t biff/512u comsat/512u login/513t
who/513u whod/513u shell/514t cmd/514t syslog/514 printer/515t spooler/515t talk/517u ntalk/518u
route/520u router/520u routed/520u gdomap/538 uucp/540t uucpd/540t klogin/543t kshell/544t
krcmd/544t dhcpv6-client/546u dhcpv6-server/547u afpovertcp/548t nntps/563t snntp/563t
submission/587t ldaps/636 tinc/655 silc/706t kerberos-adm/749t domain-s/853 rsync/873t
ftps-data/989t ftps/990t telnets/992t imaps/993t pop3s/995t socks/1080t proofd/1093t rootd/1094t
openvpn/1194 rmiregistry/1099t lotusnote/1352t lotusnotes/1352t ms-sql-s/1433t ms-sql-m/1434u
ingreslock/1524t datametrics/1645 old-radius/1645 sa-msg-port/1646 old-radacct/1646 kermit/1649t
groupwise/1677t l2f/1701u l2tp/1701u radius/1812 radius-acct/1813 radacct/1813 cisco-sccp/2000t
nfs/2049 gnunet/2086 rtcm-sc104/2101 gsigatekeeper/2119t gris/2135t cvspserver/2401t venus/2430
venus-se/2431 codasrv/2432 codasrv-se/2433 mon/2583 dict/2628t f5-globalsite/2792t gsiftp/2811t
gpsd/2947t gds-db/3050t gds_db/3050t icpv2/3130u icp/3130u isns/3205 iscsi-target/3260t
mysql/3306t ms-wbt-server/3389t nut/3493 distcc/3632t daap/3689t svn/3690t subversion/3690t
suucp/4031t sysrqd/4094t sieve/4190t epmd/4369t remctl/4373t f5-iquery/4353t ntske/4460t
ipsec-nat-t/4500u iax/4569u mtn/4691t radmin-port/4899t sip/5060 sip-tls/5061 xmpp-client/5222t
jabber-client/5222t xmpp-server/5269t jabber-server/5269t cfengine/5308t mdns/5353u
postgresql/5432t postgres/5432t freeciv/5556t rptp/5556t amqps/5671t amqp/5672t x11/6000t
x11-0/6000t x11-1/6001t x11-2/6002t x11-3/6003t x11-4/6004t x11-5/6005t x11-6/6006t x11-7/6007t
gnutella-svc/6346 gnutella-rtr/6347 redis/6379t sge-qmaster/6444t sge_qmaster/6444t
sge-execd/6445t sge_execd/6445t mysql-proxy/6446t babel/6696u ircs-u/6697t bbs/7000t
afs3-fileserver/7000u afs3-callback/7001u afs3-prserver/7002u afs3-vlserver/7003u
afs3-kaserver/7004u afs3-volser/7005u afs3-bos/7007u afs3-update/7008u afs3-rmtsys/7009u
font-service/7100t xfs/7100t http-alt/8080t webcache/8080t puppet/8140t bacula-dir/9101t
bacula-fd/9102t bacula-sd/9103t xmms2/9667t nbd/10809t zabbix-agent/10050t zabbix-trapper/10051t
amanda/10080t hkp/11371t db-lsp/17500t dcap/22125t gsidcap/22128t wnn6/22273t kerberos4/750
kerberos-iv/750 kdc/750 kerberos-master/751 kerberos_master/751u passwd-server/752u
passwd_server/752u krb-prop/754t krb_prop/754t krb5_prop/754t hprop/754t zephyr-srv/2102u
zephyr-clt/2103u zephyr-hm/2104u iprop/2121t supfilesrv/871t supfiledbg/1127t poppassd/106t
moira-db/775t moira_db/775t moira-update/777t moira_update/777t moira-ureg/779u moira_ureg/779u
spamd/783t skkserv/1178t predict/1210u rmtcfg/1236t xtel/1313t xtelw/1314t zebrasrv/2600t
zebra/2601t ripd/2602t ripngd/2603t ospfd/2604t bgpd/2605t ospf6d/2606t ospfapi/2607t
isisd/2608t fax/4557t hylafax/4559t munin/4949t lrrd/4949t rplay/5555u nrpe/5666t nsca/5667t
canna/5680t syslog-tls/6514t sane-port/6566t sane/6566t saned/6566t ircd/6667t zope-ftp/8021t
tproxy/8081t omniorb/8088t clc-build-daemon/8990t xinetd/9098t git/9418t zope/9673t
webmin/10000t kamanda/10081t amandaidx/10082t amidxtape/10083t sgi-cmsd/17001u sgi-crsd/17002u
sgi-gcd/17003u sgi-cad/17004t binkp/24554t asp/27374 csync2/30865t dircproxy/57000t tfido/60177t
fido/60179t
"""

_PROTOCOLS = """
ip/0 hopopt/0 icmp/1 igmp/2 ggp/3 ipencap/4 ip-encap/4 st/5 tcp/6 egp/8 igp/9 pup/12 udp/17
hmp/20 xns-idp/22 rdp/27 iso-tp4/29 dccp/33 xtp/36 ddp/37 idpr-cmtp/38 ipv6/41 ipv6-route/43
ipv6-frag/44 idrp/45 rsvp/46 gre/47 esp/50 ipsec-esp/50 ah/51 ipsec-ah/51 skip/57 ipv6-icmp/58
ipv6-nonxt/59 ipv6-opts/60 rspf/73 cphb/73 vmtp/81 eigrp/88 ospf/89 ospfigp/89 ax.25/93 ipip/94
etherip/97 encap/98 pim/103 ipcomp/108 vrrp/112 l2tp/115 isis/124 sctp/132 fc/133
mobility-header/135 udplite/136 mpls-in-ip/137 manet/138 hip/139 shim6/140 wesp/141 rohc/142
ethernet/143 mptcp/262
"""


def _services() -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for item in _SERVICES.split():
        name, *ports = item.split("/")
        tcp = udp = -1
        for port in ports:
            if port.endswith("t"):
                tcp = int(port[:-1])
            elif port.endswith("u"):
                udp = int(port[:-1])
            else:
                tcp = udp = int(port)
        out[name] = (tcp, udp)
    return out


#: Service name (or alias) -> (TCP port, UDP port); -1 where the name is not assigned.
SERVICES: dict[str, tuple[int, int]] = _services()
#: IP protocol name (or alias, lower case) -> number.
PROTOCOLS: dict[str, int] = {
    name: int(number) for name, number in (item.split("/") for item in _PROTOCOLS.split())
}
