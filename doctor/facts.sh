# tunnelpair doctor: what it reads on a host, printed in sections "@@ name args".
# It only reads; the pings are bounded (3 x 1 s). facts.ts puts DEVS SYSCTLS LOOKUPS STATES
# PROBES ("from>to" pairs) MODULES (those of the modes beyond ipip) IPV6 (1: a tunnel carries
# IPv6: its routes, addresses and ip6tables too) in front of it.
sec() { printf '@@ %s\n' "$*"; }
sec ipip
if ip -o link show type ipip 2>/dev/null | grep -q .; then echo loaded
elif modinfo ipip >/dev/null 2>&1; then echo available
else echo missing; fi
for m in $MODULES; do
    sec module "$m"
    if [ -d "/sys/module/$m" ]; then echo loaded
    elif modinfo "$m" >/dev/null 2>&1; then echo available
    else echo missing; fi
done
sec sysctl
for k in net/ipv4/ip_forward net/ipv4/conf/all/rp_filter $SYSCTLS; do
    v=; read -r v <"/proc/sys/$k" 2>/dev/null || [ -n "$v" ] || v=-
    echo "$k $v"
done
sec routes
ip -4 route show table main
if [ "$IPV6" = 1 ]; then sec routes6; ip -6 route show table main; fi
sec iptables
if command -v iptables-save >/dev/null 2>&1; then iptables-save 2>&1 || echo "# iptables-save failed"; else echo "# no iptables"; fi
if [ "$IPV6" = 1 ]; then
    sec ip6tables
    if command -v ip6tables-save >/dev/null 2>&1; then ip6tables-save 2>&1 || echo "# ip6tables-save failed"; else echo "# no ip6tables"; fi
fi
for d in $DEVS; do
    sec link "$d"; ip -d -o link show dev "$d" 2>/dev/null || echo missing
    sec alias "$d"; cat "/sys/class/net/$d/ifalias" 2>/dev/null || true
    sec addrs "$d"; ip -4 -o addr show dev "$d" 2>/dev/null || true
    if [ "$IPV6" = 1 ]; then sec addrs6 "$d"; ip -6 -o addr show dev "$d" 2>/dev/null || true; fi
    sec stats "$d"
    for s in tx_errors collisions tx_packets rx_packets; do v=; read -r v <"/sys/class/net/$d/statistics/$s" 2>/dev/null || [ -n "$v" ] || v=-; echo "$s $v"; done
done
for a in $LOOKUPS; do
    sec route-get "$a"
    case "$a" in *:*) f=-6 ;; *) f=-4 ;; esac
    r=$(ip "$f" -o route get "$a" 2>&1) || true
    printf '%s\n' "$r"
    # the MTU of the device the route leaves by: "auto" takes it, less 20
    d=$(printf '%s\n' "$r" | sed -n 's/.* dev \([^ ]*\).*/\1/p')
    if [ -n "$d" ] && [ -r "/sys/class/net/$d/mtu" ]; then echo "devmtu $(cat "/sys/class/net/$d/mtu")"; fi
done
for s in $STATES; do sec manifest "$s"; cat "/var/lib/tunnelpair/$s/manifest" 2>/dev/null || echo "# none"; done
for p in $PROBES; do
    sec probe "$p"
    case "$p" in *:*) set -- -6 ;; *) set -- ;; esac
    ping "$@" -n -q -c 3 -i 0.3 -W 1 -I "${p%%>*}" "${p#*>}" 2>&1 | tail -n 2
done
