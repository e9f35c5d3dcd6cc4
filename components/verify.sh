# tunnelpair verification: the end of endpoint b's apply at `pulumi up`, before its commit (a
# tunnel that does not pass it is undone like any failed step). From b's tunnel address to
# a's, through the tunnel device, one echo of the device's full MTU with DF: answered, the
# tunnel is verified. If not, a few bounded small pings; if none is answered, a diagnosis
# from what this host can see. If they are, the full MTU again: small pings pass over a path
# that narrows past the first hop (auto takes the first hop's MTU), full-size packets do not;
# if they cannot pass, the largest size that does, by a bounded search, and the MTU to set.
# It changes nothing on the host (a path MTU the first echo teaches the kernel is what any
# traffic to the peer teaches it).
# render.ts makes it the body of a function, verify_pair, run in a subshell of its own (its
# names and its exit stay there), with HOST TAG STACK PAIR DEV FROM TO PEER LOCAL REMOTE in
# front of it.
#
# Time: every ping is one echo waiting at most 1 s (-c 1 -W 1; a "message too long" refused
# locally waits it out too) beyond its own start. First one of the full MTU with DF: a working
# tunnel answers it, and that one ping is the whole probe. If not: at most TRIES for
# reachability, then the full MTU again (the first was the warm-up), 1 of the MTU the path
# reported, if any, and SEARCH of the search: at worst 1 + 5 + 2 + 11 pings, about 19 s (a
# black hole where the path is far narrower than the device).

TRIES=5
SEARCH=11   # halvings: exact over any range up to 2048 bytes (68 to a 1500-byte device and more)
FLOOR=68    # IPv4's smallest MTU (RFC 791): every link carries it, the search's lower end
NET=/sys/class/net   # (the tests point it at a directory of their own)
say() { printf '%s\n' "tunnelpair[$TAG@$HOST]: $*" || true; }
die() { printf '%s\n' "tunnelpair[$TAG@$HOST]: error: verification failed: $*" >&2 || true; exit 1; }
# (a value read into a variable, not printed into a $(...): a fork costs ~10 ms on a small router)
counter() { _v=; read -r _v <"$NET/$DEV/statistics/$1" || [ -n "$_v" ]; }   # -> $_v

# One echo with DF of $1 bytes on the wire (IPv4 20 + ICMP 8 + payload); ping's words in
# $_out (not -q: it silences "message too long" and "Frag needed", which say why).
df_ping() { _out=$(LC_ALL=C ping -n -M "do" -c 1 -W 1 -s $(($1 - 28)) -I "$FROM" "$TO" 2>&1); }

# The largest size in ($1, $2) that passes, $1 taken to pass and $2 known not to: -> $_lo.
# At most SEARCH pings; a range wider than 2^SEARCH ends at a size that passed, a little low.
largest() {
    _lo=$1 _hi=$2 _k=0
    while [ $((_hi - _lo)) -gt 1 ] && [ "$_k" -lt "$SEARCH" ]; do
        _k=$((_k + 1)) _mid=$(((_lo + _hi) / 2))
        if df_ping "$_mid"; then _lo=$_mid; else _hi=$_mid; fi
    done
}

# The full MTU with DF (iputils' ping -M do; busybox's and inetutils' ping cannot set DF, and
# a ping that fragments would pass whatever the path: say so rather than guess) -> $mtu_note.
mtu_probe() {
    case $(ping -V 2>&1) in
        *iputils*) ;;
        *) mtu_note="; $DEV's MTU $mtu not probed: $HOST's ping is not iputils' and cannot set DF (install iputils-ping to probe it)"; return 0 ;;
    esac
    # The first full-size echo (before the loop below) was the warm-up: a router where the
    # path narrows answers it with ICMP "fragmentation needed", which teaches this host the
    # path MTU; this one is the probe.
    if df_ping "$mtu"; then
        mtu_note=$passes
        return 0
    fi
    # What the path told the host, if anything: "Frag needed ... (mtu = N)" as the tunnel
    # refuses the probe, or "message too long, mtu=N" once the kernel knows
    said=$(printf '%s\n' "$_out" | sed -n '/mtu *= *[0-9]/{s/.*mtu *= *\([0-9][0-9]*\).*/\1/p;q;}')
    if [ -z "$said" ] || [ "$said" -le "$FLOOR" ] || [ "$said" -ge "$mtu" ]; then
        why="nothing says so: ICMP \"fragmentation needed\" does not reach $HOST (filtered on the path: an MTU black hole, where larger packets vanish)"
        largest "$FLOOR" "$mtu"
    elif df_ping "$said"; then
        # the host's kernel refuses anything larger from now on: no search
        _lo=$said why="the path says so (ICMP \"fragmentation needed\" reaches $HOST)"
    else
        why="the path says $said bytes (ICMP \"fragmentation needed\" reaches $HOST), but those are lost further on: an MTU black hole beyond"
        largest "$FLOOR" "$said"
    fi
    [ "$_lo" -gt "$FLOOR" ] ||
        die "$DEV on $HOST has MTU $mtu, and no DF ping from $FROM to $TO passed, not even $((FLOOR + 1)) bytes, yet pings with ping's default options were answered: something on the path drops DF packets"
    die "$DEV on $HOST has MTU $mtu, but $mtu-byte packets do not reach $PEER's $TO through it: the largest that passed is $_lo bytes on the wire (DF pings from $FROM); the path between $LOCAL and $REMOTE does not carry $((mtu + 20))-byte packets (the MTU and IPIP's 20 bytes), and $why. Set mtu: $_lo on endpoint b of pair $PAIR ($HOST), and on a ($PEER) unless its MTU is already no larger"
}

command -v ping >/dev/null 2>&1 || die "ping (iputils-ping) is not installed on $HOST; install it, or set verify: false for the pair"
[ -e "$NET/$DEV" ] || die "$DEV does not exist on $HOST"
counter tx_packets; tx0=$_v; counter rx_packets; rx0=$_v
_v=; read -r _v <"$NET/$DEV/mtu" || [ -n "$_v" ]; mtu=$_v
passes="; $mtu-byte packets pass ($DEV's MTU, DF)"
verified() { say "verified: $PEER answers at $TO through $DEV (probe $1 of $TRIES)$2"; exit 0; }
# The common case in one echo: answered, the full MTU with DF proves both that the peer
# answers through the tunnel and that full-size packets pass (-M is iputils': any other ping
# refuses the option, and the steps below tell what it can).
! df_ping "$mtu" || verified 1 "$passes"
n=0
while [ "$n" -lt "$TRIES" ]; do
    n=$((n + 1))
    if ping -n -q -c 1 -W 1 -I "$FROM" "$TO" >/dev/null 2>&1; then
        mtu_probe
        verified "$n" "$mtu_note"
    fi
done

# No answer: say where the probes stopped, as far as this host can tell.
counter tx_packets; tx1=$_v; counter rx_packets; rx1=$_v
_flags=; read -r _flags <"$NET/$DEV/flags" || [ -n "$_flags" ]
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
