# --- IPv6 where the tunnel carries it (mode sit, issue #15) ----------------------------------
# render.ts puts this part only into the scripts of a pair whose tunnel carries IPv6, after
# the others: it redefines some of their functions (the runtime's only way to extend them
# without changing their text, which every other pair's scripts hold byte for byte).
#   addresses and routes: the IPv6 ones are read by a second `ip -6` (into ADDRS6, ROUTES6)
#     beside the IPv4 read; `ip addr add`, `ip route add` take either family as they are.
#   tables: filter6 and mangle6 are ip6tables' filter and mangle: the chain and jump kinds
#     read, queue, build and remove them as they do iptables' tables, with the ip6tables
#     programs (each table name's "6" dropped before it reaches them).
#   sysctl net/ipv6/conf/all/forwarding: writing it writes every conf.*.forwarding of IPv6
#     (default and each device): they are saved with it and restored after it, as ip_forward's.
#   tunnel: a sit device of mode ip6ip, never "any" (ip's default, which takes IPIP too).

# --- addresses and routes of both families --------------------------------------------------
IP6_READ=0; ADDRS6=; ROUTES6=
load_ip6() {   # the IPv6 addresses ("N: DEV inet6 ...") into ADDRS6, the main table's routes into ROUTES6
    [ "$IP6_READ" = 0 ] || return 0
    local all='' seen=0 l=''
    all=$(ip -6 -o -batch - 2>&1 <<EOF
addr show
route show table main
EOF
    ) || die "ip -6 addr show / ip -6 route show failed: $all"
    ADDRS6=; ROUTES6=; IFS=$NL
    for l in $all; do
        IFS=$WS
        case "${l%%": "*}" in
            *[!0-9]* | "") if [ "$seen" = 1 ]; then ROUTES6=$ROUTES6$l$NL; fi ;;
            *) seen=1; ADDRS6=$ADDRS6$l$NL ;;
        esac
    done
    IFS=$WS; IP6_READ=1
}
ip_changed() { IP_READ=0; IP6_READ=0; }
route_key() {   # -> $_k: a route's destination as ip prints it
    # (IPv6's first: an IPv6 /32, a site's allocation, keeps its prefix; only /128 is a host's)
    case "$1" in 0.0.0.0/0 | ::/0) _k=default ;; *:*/128) _k=${1%/128} ;; *:*) _k=$1 ;; */32) _k=${1%/32} ;; *) _k=$1 ;; esac
}
has_route() {   # dest dev|via X (either family)
    load_ip; load_ip6
    route_key "$1"
    case "$NL$ROUTES$ROUTES6" in *"$NL$_k $2 $3$NL"* | *"$NL$_k $2 $3 "*) return 0 ;; esac
    return 1
}
has_addr() {    # cidr dev [peer] (IPv4 or IPv6; point to point: IPv4's only)
    load_ip; load_ip6
    local want="$1" dev="$2" peer="${3-}" fam=inet l=''
    case "$1" in *:*) fam=inet6 ;; esac
    [ -z "$peer" ] || want=${1%/32}
    IFS=$NL
    for l in $ADDRS$ADDRS6; do
        IFS=$WS
        # shellcheck disable=SC2086 # split into words on purpose
        set -- $l
        if [ $# -lt 5 ] || [ "$2" != "$dev" ] || [ "$3" != "$fam" ] || [ "$4" != "$want" ]; then continue; fi
        if [ -n "$peer" ]; then
            if [ "$5 ${6-}" = "peer $peer" ]; then return 0; fi
        elif [ "$5" != peer ]; then return 0; fi
    done
    IFS=$WS; return 1
}

# --- tunnel: a sit device carries IPv6 and nothing else ---------------------------------------
# `ip link add type sit` makes a device of mode "any", which decapsulates IPv4 in IPv4
# (protocol 4) from its remote as well: a pair's sit device is made "mode ip6ip" (protocol 41
# only). modes.sh's tunnel_args and tunnel_desc, with that: a sit device of another mode
# reads as not present ($_enc holds its mode), and the next run sets it in place.
tunnel_desc() {   # -> $_tp, $_enc (as modes.sh's; a sit device's mode other than ip6ip in $_enc)
    local d='' m='' l='' r='' t='' ik=- ok=- v='' sp=''
    _tp=; _enc=none
    d=$(ip -d -o link show dev "$1") || return 1
    case "$d" in
        *" link/gre "*) m=gre ;;
        *" link/sit "*) m=sit ;;
        *" link/tunnel6 "*) m=ip6tnl ;;
        *" link/ipip "*) m=ipip ;;
        *) m=other ;;
    esac
    # shellcheck disable=SC2086 # split into words on purpose
    set -- $d
    while [ $# -gt 1 ]; do
        case "$1" in
            local) l=$2 ;;
            remote) r=$2 ;;
            ttl | hoplimit) t=$2 ;;
            ikey) quad_int "$2"; ik=$_v ;;
            okey) quad_int "$2"; ok=$_v ;;
            encaplimit) v=$2 ;;
            ipip6 | ip6ip6) if [ "$m" = ip6tnl ]; then m=$1; fi ;;
            sit) if [ "$m" = sit ]; then sp=$2; fi ;;   # "sit ip6ip remote ...": its mode
        esac
        shift
    done
    if [ "$ik" != "$ok" ]; then ik=$ik/$ok; fi
    case "$m" in
        ipip6 | ip6ip6) _enc=${v:-default} ;;
        sit) [ "$sp" = ip6ip ] || _enc=mode-${sp:-unknown} ;;
    esac
    _tp="$m $l $r $t $ik"
}
tunnel_args() {   # mode local remote ttl key -> $_ta (as modes.sh's; sit: mode ip6ip)
    _ta=
    case "$1" in
        gre) _ta="gre local $2 remote $3 ttl $4" ;;
        sit) _ta="sit mode ip6ip local $2 remote $3 ttl $4" ;;
        ipip6 | ip6ip6) _ta="ip6tnl mode $1 local $2 remote $3 ttl $4 encaplimit none" ;;
        *) die "unknown tunnel mode '$1'" ;;
    esac
    [ "$5" = - ] || _ta="$_ta key $5"
}

# --- ip6tables: the tables filter6 and mangle6 ----------------------------------------------
# Each family's tables are read once, with one *-save, until a change (tables_changed).
TABLES6_READ=0
xt_read() {   # program suffix: every table the program prints into SAVE_<table><suffix>
    local all='' t='' cur='' sec='' line=''
    all=$($1) || die "$1 failed"
    for t in filter nat mangle raw security; do eval "SAVE_$t$2="; done
    IFS=$NL
    for line in $all; do
        IFS=$WS
        case "$line" in
            "*"*) cur=${line#"*"}; sec= ;;
            COMMIT) case "$cur" in filter | nat | mangle | raw | security) eval "SAVE_$cur$2=\$sec" ;; esac; cur= ;;
            "#"*) ;;
            *) sec=$sec$line$NL ;;
        esac
    done
    IFS=$WS
}
load_table() {   # table -> $_s (filter6, mangle6: ip6tables')
    case "$1" in
        *6) if [ "$TABLES6_READ" = 0 ]; then xt_read ip6tables-save 6; TABLES6_READ=1; fi ;;
        *) if [ "$TABLES_READ" = 0 ]; then xt_read iptables-save ""; TABLES_READ=1; fi ;;
    esac
    eval "_s=\$SAVE_$1"
}
tables_changed() { TABLES_READ=0; TABLES6_READ=0; }
ipt() {   # [-t TABLE] args: TABLE filter6 or mangle6 goes to ip6tables as filter or mangle
    if [ "${1-}" = -t ]; then
        case "$2" in
            *6) local t="${2%6}"; shift 2; ip6tables -w "$IPT_WAIT" -t "$t" "$@"; return ;;
        esac
    fi
    iptables -w "$IPT_WAIT" "$@"
}
IPT6_CHECKED=0
need_ip6tables() {
    [ "$IPT6_CHECKED" = 0 ] || return 0
    local p=''
    for p in ip6tables ip6tables-save ip6tables-restore; do
        command -v "$p" >/dev/null 2>&1 || die "'$p' is required for the IPv6 firewall rules"
    done
    IPT6_CHECKED=1
}
preflight_chain() { case "$1" in *6) need_ip6tables ;; *) need_iptables ;; esac; }
preflight_jump() { case "$1" in *6) need_ip6tables ;; *) need_iptables ;; esac; }
flush_queue() {   # as base.sh's, with each family's tables in one restore of its own program
    [ -n "$QUEUED_TABLES" ] || return 0
    local in4='' in6='' t='' q=''
    for t in $QUEUED_TABLES; do
        case "$t" in
            *6) eval "in6=\$in6'*'\${t%6}\$NL\$PENDING_${t}_decl\$PENDING_${t}_rules"; in6=${in6}COMMIT$NL ;;
            *) eval "in4=\$in4'*'\$t\$NL\$PENDING_${t}_decl\$PENDING_${t}_rules"; in4=${in4}COMMIT$NL ;;
        esac
    done
    # (IPv4's first; if IPv6's is refused, the rollback undoes IPv4's, whose undo is journaled)
    if [ -n "$in4" ]; then
        run iptables-restore -w "$IPT_WAIT" --noflush <<EOF
$in4
EOF
    fi
    if [ -n "$in6" ]; then
        run ip6tables-restore -w "$IPT_WAIT" --noflush <<EOF
$in6
EOF
    fi
    tables_changed
    for q in $QUEUED_CHAINS; do chain_live "${q%%:*}" "${q#*:}"; printf '%s' "$_live" >"$STATE/chains/${q#*:}.live"; done
    QUEUED_TABLES=; QUEUED_CHAINS=
}
chain_restore() {   # table chain rules-file: as objects.sh's, with filter6/mangle6 in ip6tables
    local p=iptables-restore t="$1"
    case "$1" in *6) p=ip6tables-restore; t=${1%6} ;; esac
    slurp "$3" || _c=
    run "$p" -w "$IPT_WAIT" --noflush <<EOF
*$t
:$2 - [0:0]
${_c}COMMIT
EOF
    tables_changed
    chain_live "$1" "$2"; printf '%s' "$_live" >"$STATE/chains/$2.live"
}

# --- sysctl: IPv6's forwarding and what writing it rewrites ---------------------------------
sysctl_companions() {   # key -> $_comp
    local f='' fam=''
    _comp=
    case "$1" in
        net/ipv4/ip_forward) fam=ipv4; _comp=net/ipv4/conf/all/accept_redirects ;;
        net/ipv6/conf/all/forwarding) fam=ipv6 ;;
        *) return 0 ;;
    esac
    set +f
    for f in /proc/sys/net/"$fam"/conf/*/forwarding; do [ "${f#/proc/sys/}" = "$1" ] || _comp="$_comp ${f#/proc/sys/}"; done
    set -f
    _comp=${_comp# }
}
