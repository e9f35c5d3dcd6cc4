# --- the tunnel modes beyond ipip (issue #15) ------------------------------------------------
# render.ts puts this part only into the scripts of a pair whose mode is not ipip: an ipip
# pair's script neither carries nor parses it. Its kinds are new ones (tunnel, tunmtu), beside
# ipip's link and mtu, calling their helpers rather than changing them (they were added so that
# ipip pairs' deployed Commands stayed as they were).
# (A pair switched back to ipip meets "unknown object kind 'tunnel'" in its manifest and
# changes nothing: destroy it first, or give the ipip pair another name.)

# --- tunnel: a gre, sit or ip6tnl device, ours by its ifalias: ---------------------------------
# "tunnel DEV MODE LOCAL REMOTE TTL KEY|-" (MODE gre, sit, ipip6 or ip6ip6; KEY GRE's, decimal)
kind tunnel ip
quad_int() {   # a.b.c.d -> $_v: the 32-bit number ip prints a GRE key as
    local IFS=.
    # shellcheck disable=SC2086 # split at the dots on purpose
    set -- $1
    _v=$((($1 << 24) + ($2 << 16) + ($3 << 8) + $4))
}
# "mode local remote ttl key" of a device as `ip -d link` reports them, into $_tp: the mode
# gre, sit, ipip6, ip6ip6 (or ipip, other); the hop limit of ip6tnl as its ttl ("inherit": 0);
# the key in decimal, "-" for none, "IN/OUT" where they differ. $_enc: "none" unless an
# ip6tnl device sends the encapsulation limit option (8 bytes more than its MTU allows for),
# or a sit device is of a mode other than ip6ip ("mode-any": `ip link add type sit` alone
# makes one of mode any, which decapsulates IPv4 in IPv4, protocol 4, from its remote too):
# such a device reads as not present, and the next run sets it in place.
tunnel_desc() {   # -> $_tp, $_enc
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
            sit) if [ "$m" = sit ]; then case "$2" in ip6ip | ipip | mplsip | any) sp=$2 ;; esac; fi ;;   # "sit ip6ip remote ...": its mode
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
tunnel_args() {   # mode local remote ttl key -> $_ta: what `ip link add|set ... type` takes
    _ta=
    case "$1" in
        gre) _ta="gre local $2 remote $3 ttl $4" ;;
        sit) _ta="sit mode ip6ip local $2 remote $3 ttl $4" ;;   # (protocol 41 only: see tunnel_desc)
        # (the encapsulation limit option would add 8 bytes to each packet: the overhead is 40)
        ipip6 | ip6ip6) _ta="ip6tnl mode $1 local $2 remote $3 ttl $4 encaplimit none" ;;
        *) die "unknown tunnel mode '$1'" ;;
    esac
    [ "$5" = - ] || _ta="$_ta key $5"
}
load_module() {   # mode: the kernel module of its devices, loaded once and never unloaded (as ipip's, main.sh)
    local m=''
    case "$1" in gre) m=ip_gre ;; sit) m=sit ;; *) m=ip6_tunnel ;; esac
    [ -d "/sys/module/$m" ] || modprobe "$m" 2>/dev/null || [ -d "/sys/module/$m" ] || die "this kernel cannot make $1 tunnels (modprobe $m failed)"
}
preflight_tunnel() {
    check_owner "$1"
    has_local_address "$3" || die "the underlay address $3 is not configured on this host"
}
present_tunnel() {
    dev_exists "$1" && dev_alias "$1" && [ "$_v" = "$TAG" ] && tunnel_desc "$1" && [ "$_tp" = "$2 $3 $4 $5 $6" ] && [ "$_enc" = none ]
}
add_tunnel() {
    tunnel_args "$2" "$3" "$4" "$5" "$6"
    if dev_exists "$1"; then
        # ours (the preflight), with other parameters: changed in place; its addresses and routes stay
        tunnel_desc "$1" || die "cannot read $1 (ip -d link show)"
        # shellcheck disable=SC2086 # "mode local remote ttl key"
        set -- "$@" $_tp
        [ "$7" = "$2" ] || die "$1 is ours but a $7 device, not $2: remove it (ip link del $1) and run again"
        # (ip link set keeps a key it is not given: it has no word to drop one)
        if [ "${11}" != - ] && [ "$6" = - ]; then die "$1 has GRE key ${11}, which ip link set cannot remove: remove it (ip link del $1) and run again"; fi
        journal "add tunnel $1 $_tp"
        # shellcheck disable=SC2086 # the type's arguments, one word each
        ipq link set dev "$1" type $_ta
    else
        load_module "$2"
        # undone as "newlink": it has no alias yet if the next step fails
        journal "del newlink $1"
        # shellcheck disable=SC2086 # the type's arguments, one word each
        ipq link add name "$1" type $_ta
        ipq link set dev "$1" alias "$TAG"
    fi
}
del_tunnel() { del_link "$1"; }

# --- tunmtu: a tunnel device's MTU, a number or auto: "tunmtu DEV VALUE|auto PEER OVERHEAD" -----
# As the mtu kind (objects.sh), whose resolve_mtu takes ipip's 20 off; auto here takes the
# mode's overhead instead. The first read of ip's state (load_ip) takes the routes to the peers
# of the mtu kind only: this one's are added, and a read already made is read again.
kind tunmtu ip
resolve_tunmtu() {   # value peer overhead -> $_mtu_v
    resolve_mtu "$1" "$2"
    if [ "$1" = auto ]; then _mtu_v=$((_mtu_v + 20 - $3)); fi
}
preflight_tunmtu() {
    [ "$2" = auto ] || return 0
    case " $AUTO_PEERS " in *" $3 "*) return 0 ;; esac
    AUTO_PEERS=${AUTO_PEERS:+$AUTO_PEERS }$3
    ip_changed
}
present_tunmtu() { local now=''; dev_exists "$1" && read_first "/sys/class/net/$1/mtu" && now=$_v && resolve_tunmtu "$2" "$3" "$4" && [ "$now" = "$_mtu_v" ]; }
add_tunmtu() {
    # a device made in this run has no MTU to go back to: it goes as a whole
    if dev_exists "$1"; then read_first "/sys/class/net/$1/mtu"; journal "add tunmtu $1 $_v $3 $4"; fi
    resolve_tunmtu "$2" "$3" "$4"
    ipq link set dev "$1" mtu "$_mtu_v"
}
del_tunmtu() { :; }   # a setting of our own device: it goes with the device
