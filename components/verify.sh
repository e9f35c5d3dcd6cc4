# tunnelpair verification: the end of every `pulumi up` of a pair. From this endpoint's
# tunnel address to the peer's, through the tunnel device, a few bounded pings; if none is
# answered, a diagnosis from what this host can see. It changes nothing on the host.
# render.ts puts HOST TAG STACK DEV FROM TO PEER LOCAL REMOTE in front of it.

TRIES=5
say() { printf '%s\n' "tunnelpair[$TAG@$HOST]: $*" || true; }
die() { printf '%s\n' "tunnelpair[$TAG@$HOST]: error: verification failed: $*" >&2 || true; exit 1; }
# (a value read into a variable, not printed into a $(...): a fork costs ~10 ms on a small router)
counter() { _v=; read -r _v <"/sys/class/net/$DEV/statistics/$1" || [ -n "$_v" ]; }   # -> $_v

command -v ping >/dev/null 2>&1 || die "ping (iputils-ping) is not installed on $HOST; install it, or set verify: false for the pair"
[ -e "/sys/class/net/$DEV" ] || die "$DEV does not exist on $HOST"
counter tx_packets; tx0=$_v; counter rx_packets; rx0=$_v
n=0
while [ "$n" -lt "$TRIES" ]; do
    n=$((n + 1))
    if ping -n -q -c 1 -W 1 -I "$FROM" "$TO" >/dev/null 2>&1; then
        say "verified: $PEER answers at $TO through $DEV (probe $n of $TRIES)"
        exit 0
    fi
done

# No answer: say where the probes stopped, as far as this host can tell.
counter tx_packets; tx1=$_v; counter rx_packets; rx1=$_v
_flags=; read -r _flags <"/sys/class/net/$DEV/flags" || [ -n "$_flags" ]
_route=$(ip -4 -o route get "$TO" from "$FROM" 2>&1) || true
_via=$(printf '%s\n' "$_route" | sed -n 's/.* dev \([^ ]*\).*/\1/p')
hint="(npm run doctor -- --stack $STACK checks both hosts)"
if [ $((_flags & 1)) -ne 1 ]; then
    die "$DEV is down on $HOST $hint"
elif [ "$_via" != "$DEV" ]; then
    die "on $HOST the route to $PEER's tunnel address $TO goes by ${_via:-nothing} ($_route), not $DEV $hint"
elif [ "$tx1" = "$tx0" ]; then
    die "no probe left $DEV on $HOST: its firewall (OUTPUT) drops ICMP from $FROM to $TO $hint"
elif [ "$rx1" = "$rx0" ]; then
    die "$((tx1 - tx0)) probes left $DEV on $HOST for $REMOTE, none came back: $PEER does not answer through the tunnel (on $PEER: its tunnel device with remote $LOCAL, its firewall admitting protocol 4 from $LOCAL, its route to $FROM by the tunnel), or the path between $LOCAL and $REMOTE drops protocol 4 $hint"
else
    die "$((rx1 - rx0)) packets came back through $DEV on $HOST but no probe was answered: $HOST's firewall (INPUT) or rp_filter drops them $hint"
fi
