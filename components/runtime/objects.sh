# --- the objects a pair owns, one section per kind ------------------------------------------
# Every kind K the planner emits (HostObject in plan.ts) has, in its section:
#   preflight_K ARGS  refuses, before anything changes, what cannot work (most kinds: nothing)
#   present_K ARGS    whether the object is there as desired
#   add_K ARGS        brings it about, its undo journaled first ("del K ..." or "add K ...");
#                     at once, or queued in the batch BATCH_K names (base.sh)
#   del_K ARGS        removes it, tolerating what is already gone; a command that fails fails it;
#                     a kind of the ip batch queues its command there (its caller flushes)
# and, where they apply:
#   queue_del_K ARGS  (a kind of the iptables batch) queues its removal in that batch
#   files_K ARGS      (a kind whose present_K compares files, with file_is) appends their
#                     paths to $_f, one a line: load_files (state.sh) reads them with the rest
# Each section starts with `kind K BATCH [adopt]`, which adds K to KINDS (obj in main.sh
# refuses any other: a manifest left by a newer version) and says, in BATCH_K and ADOPT_K:
#   BATCH   ip or ipt: add_K queues into the ip or the iptables batch, and apply sends the
#           other batch to the kernel before it; "-": it changes at once, after both batches
#   adopt   the object may be there before the pair is; it then stays when the pair goes
# Undo steps that are no object of their own: del_newlink, add_down.
KINDS=
kind() { KINDS="$KINDS $1"; eval "BATCH_$1=\${2#-}; ADOPT_$1=\${3-}"; }

# --- link: the ipip device, ours by its ifalias: "link DEV LOCAL REMOTE TTL" -----------------
kind link ip
dev_exists() { [ -e "/sys/class/net/$1" ]; }
# (no "a && b" as a function's last command: under set -e a false b would end the script)
dev_alias() { _v=; if [ -r "/sys/class/net/$1/ifalias" ]; then read_first "/sys/class/net/$1/ifalias" || true; fi; }   # -> $_v
# "local remote ttl" of an ipip device as `ip -d link` reports them; ttl 0 reads "inherit".
tunnel_params() {   # -> $_tp
    local d='' l='' r='' t=''
    _tp=
    d=$(ip -d -o link show dev "$1") || return 1
    case "$d" in *" link/ipip "*) ;; *) _tp=not-ipip; return 0 ;; esac
    # shellcheck disable=SC2086 # split into words on purpose
    set -- $d
    while [ $# -gt 1 ]; do
        case "$1" in local) l=$2 ;; remote) r=$2 ;; ttl) t=$2 ;; esac
        shift
    done
    _tp="$l $r $t"
}
check_owner() {   # refuses, before anything changes, a device of that name that is not ours
    dev_exists "$1" || return 0
    dev_alias "$1"
    [ "$_v" = "$TAG" ] || die "$1 exists and is not ours (ifalias '$_v', expected '$TAG'); it was left untouched"
}
NEED_IPIP=0   # a device is desired: the preflight loads ipip once every object has passed
preflight_link() {
    NEED_IPIP=1
    check_owner "$1"
    has_local_address "$2" || die "the underlay address $2 is not configured on this host"
}
present_link() { dev_exists "$1" && dev_alias "$1" && [ "$_v" = "$TAG" ] && tunnel_params "$1" && [ "$_tp" = "$2 $3 $4" ]; }
add_link() {
    if dev_exists "$1"; then
        # ours, with other parameters: changed in place; its addresses and routes stay
        tunnel_params "$1" || true
        journal "add link $1 $_tp"
        ipq link set dev "$1" type ipip local "$2" remote "$3" ttl "$4"
    else
        # undone as "newlink": it has no alias yet if the next step fails
        journal "del newlink $1"
        ipq link add name "$1" type ipip local "$2" remote "$3" ttl "$4"
        ipq link set dev "$1" alias "$TAG"
    fi
}
del_link() {
    dev_exists "$1" || return 0
    dev_alias "$1"
    [ "$_v" = "$TAG" ] || { warn "$1 is no longer ours; left alone"; return 0; }
    ipq link del dev "$1"
}
del_newlink() {   # made by this run: no device of this name existed before it (preflight)
    dev_exists "$1" || return 0
    dev_alias "$1"
    if [ -n "$_v" ] && [ "$_v" != "$TAG" ]; then warn "$1 is no longer ours; left alone"; return 0; fi
    ipq link del dev "$1"
}

# --- mtu: the device's MTU, a number or auto: "mtu DEV VALUE|auto PEER" ----------------------
kind mtu ip
# The peers of the desired auto MTUs (into AUTO_PEERS), before the preflight's first read of
# ip's state: that one read (load_ip) takes the routes to them too.
mtu_auto_peers() {
    local l=''
    IFS=$NL
    for l in $DESIRED; do IFS=$WS; case "$l" in "mtu "*" auto "*) AUTO_PEERS="$AUTO_PEERS ${l##* }" ;; esac; done
    IFS=$WS; AUTO_PEERS=${AUTO_PEERS# }
}
resolve_mtu() {   # value peer -> $_mtu_v: "auto" is the MTU of the route to the peer - 20
    if [ "$1" != auto ]; then _mtu_v=$1; return 0; fi
    local route='' errors='' dev='' mtu=''
    case "$2" in
        *:*) load_ip6; route=$PEER_ROUTES6; errors=$IP_ERRORS6 ;;
        *) load_ip; route=$PEER_ROUTES; errors=$IP_ERRORS ;;
    esac
    case "$NL$route" in *"$NL$2 "*) ;; *) die "no route to the peer $2${errors:+ (ip: ${errors%"$NL"})}" ;; esac
    route=$NL$route; route=${route#*"$NL$2 "}; route=${route%%"$NL"*}
    # shellcheck disable=SC2086 # split into words on purpose
    set -- $route
    while [ $# -gt 1 ]; do case "$1" in dev) dev=$2 ;; mtu) mtu=$2 ;; esac; shift; done
    if [ -z "$mtu" ]; then read_first "/sys/class/net/$dev/mtu" || die "cannot read the MTU of $dev"; mtu=$_v; fi
    _mtu_v=$((mtu - 20))
}
preflight_mtu() { :; }
present_mtu() { local now=''; dev_exists "$1" && read_first "/sys/class/net/$1/mtu" && now=$_v && resolve_mtu "$2" "$3" && [ "$now" = "$_mtu_v" ]; }
add_mtu() {
    # a device made in this run has no MTU to go back to: it goes as a whole
    if dev_exists "$1"; then read_first "/sys/class/net/$1/mtu"; journal "add mtu $1 $_v $3"; fi
    resolve_mtu "$2" "$3"
    ipq link set dev "$1" mtu "$_mtu_v"
}
del_mtu() { :; }   # a setting of our own device: it goes with the device

# --- state: the device up: "state DEV up" -----------------------------------------------------
kind state ip
dev_up() { read_first "/sys/class/net/$1/flags" && [ $((_v & 1)) -eq 1 ]; }
preflight_state() { :; }
present_state() { dev_exists "$1" && dev_up "$1"; }
add_state() { journal "add down $1"; ipq link set dev "$1" up; }
add_down() { ! dev_exists "$1" || ipq link set dev "$1" down; }   # (the undo of add_state; a device not made is not there)
del_state() { :; }   # goes with the device

# --- devsysctl: a setting of the pair's own device: "devsysctl DEV KEY VALUE" ----------------
kind devsysctl -   # (at once: the device must be made before its sysctl can be written)
preflight_devsysctl() { :; }
present_devsysctl() { [ -e "/proc/sys/net/ipv4/conf/$1/$2" ] && sysctl_read "net/ipv4/conf/$1/$2" && [ "$_v" = "$3" ]; }
add_devsysctl() {
    sysctl_read "net/ipv4/conf/$1/$2"
    journal "add devsysctl $1 $2 $_v"
    run sysctl_write "net/ipv4/conf/$1/$2" "$3"
}
del_devsysctl() { :; }   # goes with the device

# --- addr: an address: "addr CIDR DEV LABEL|- prefixroute|noprefixroute [PEER]" --------------
kind addr ip adopt
has_addr() {    # cidr dev [peer]: in the addresses of its family; ip prints a point-to-point address "inet A peer B/32"
    local want="$1" dev="$2" peer="${3-}" fam=inet addrs='' l=''
    case "$1" in *:*) load_ip6; fam=inet6; addrs=$ADDRS6 ;; *) load_ip; addrs=$ADDRS ;; esac
    [ -z "$peer" ] || want=${1%/32}
    IFS=$NL
    for l in $addrs; do
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
preflight_addr() { :; }
present_addr() { has_addr "$1" "$2" "${5-}"; }
add_addr() {
    journal "del addr $*"
    local cidr="$1" dev="$2" pr="$4" peer="${5-}"
    if [ "$3" = - ]; then set --; else set -- label "$3"; fi
    [ "$pr" = noprefixroute ] && set -- "$@" noprefixroute
    [ -z "$peer" ] || set -- peer "$peer" "$@"
    ipq addr add "$cidr" dev "$dev" "$@"
}
del_addr() {   # (a point-to-point address is deleted by its local and peer addresses both)
    has_addr "$1" "$2" "${5-}" || return 0
    if [ -n "${5-}" ]; then ipq addr del "$1" peer "$5" dev "$2"; else ipq addr del "$1" dev "$2"; fi
}

# --- route: "route DEST dev DEV" (into the tunnel) or "route DEST via GATEWAY" (a client's) ---
kind route ip adopt
preflight_route() { :; }
present_route() { has_route "$@"; }
add_route() { journal "del route $*"; ipq route add "$@"; }
del_route() { has_route "$@" || return 0; ipq route del "$@"; }

# --- chain: a chain the pair owns, rebuilt atomically with iptables-restore --noflush --------
# "chain TABLE NAME"; its rules come from chain_rules (render.ts). $STATE/chains keeps the
# rules as built (NAME.rules) and as the kernel printed them after (NAME.live). TABLE filter6
# or mangle6: ip6tables' (base.sh).
kind chain ipt
XT_CHECKED=   # the xtables families whose programs are there: iptables, ip6tables
need_xtables() {   # table: the programs of its family (filter6, mangle6: ip6tables'), checked once
    local x=iptables p=''
    case "$1" in *6) x=ip6tables ;; esac
    case " $XT_CHECKED " in *" $x "*) return 0 ;; esac
    for p in "$x" "$x-save" "$x-restore"; do
        command -v "$p" >/dev/null 2>&1 || die "'$p' is required for the firewall rules"
    done
    XT_CHECKED="$XT_CHECKED $x"
}
preflight_chain() { need_xtables "$1"; }
files_chain() { _f="$_f$NL$STATE/chains/$2.rules$NL$STATE/chains/$2.live"; }
present_chain() {   # ours, as we built it, and nobody has edited it since
    chain_rules "$2"
    file_is "$STATE/chains/$2.rules" "$_rules" && chain_live "$1" "$2" && file_is "$STATE/chains/$2.live" "$_live"
}
add_chain() {
    if chain_exists "$1" "$2"; then
        [ -d "$STATE/undo" ] || mkdir "$STATE/undo"   # ($STATE/chains: made by make_dirs)
        chain_live "$1" "$2"; printf '%s' "$_live" >"$STATE/undo/$2.rules"
        # the rules it was built with, which the undo puts back with the chain (chain_restore)
        [ ! -e "$STATE/chains/$2.rules" ] || mv -f "$STATE/chains/$2.rules" "$STATE/undo/$2.built"
        journal "chainrestore $1 $2 $STATE/undo/$2.rules"
    else
        if [ -e "$STATE/chains/$2.rules" ]; then
            # the files of a chain that has gone (a reboot, a reload): the undo puts them back
            [ -d "$STATE/undo/chains" ] || mkdir -p "$STATE/undo/chains"
            set -- "$@" "$STATE/chains/$2.rules"
            [ ! -e "$STATE/chains/$2.live" ] || set -- "$@" "$STATE/chains/$2.live"
            mv -f "$3" ${4+"$4"} "$STATE/undo/chains/"
            set -- "$1" "$2"
            journal "chainfiles $2"
        fi
        journal "del chain $1 $2"
    fi
    chain_rules "$2"; printf '%s' "$_rules" >"$STATE/chains/$2.rules"
    queue "$1" decl ":$2 - [0:0]"
    [ -z "$_rules" ] || queue "$1" rules "${_rules%"$NL"}"
    QUEUED_CHAINS="$QUEUED_CHAINS $1:$2"
}
chain_restore() {   # table chain rules-file: the undo of add_chain on a chain that was there (at once)
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
    # add_chain wrote the rules it meant, which the chain no longer holds: the ones it was
    # built with go back (left, the next run would take the old rules for the new, for good)
    if [ -e "$STATE/undo/$2.built" ]; then mv -f "$STATE/undo/$2.built" "$STATE/chains/$2.rules"; else rm -f "$STATE/chains/$2.rules"; fi
}
chain_files() {   # chain: the undo of add_chain's move of a gone chain's files (at once)
    local f=''
    for f in "$STATE/undo/chains/$1.rules" "$STATE/undo/chains/$1.live"; do [ ! -e "$f" ] || mv -f "$f" "$STATE/chains/"; done
}
del_chain() {
    if chain_exists "$1" "$2"; then run ipt -t "$1" -F "$2"; run ipt -t "$1" -X "$2"; fi
    rm -f "$STATE/chains/$2.rules" "$STATE/chains/$2.live"
    tables_changed
}
queue_del_chain() {   # (its files in $STATE/chains go with $STATE)
    if chain_exists "$1" "$2"; then queue "$1" rules "-F $2"; queue "$1" rules "-X $2"; fi
}

# --- jump: "jump TABLE FROM CHAIN", at the top of FROM, with the pair's tag as its comment ---
kind jump ipt
has_jump() {    # table from chain
    load_table "$1"
    local line=''
    IFS=$NL
    for line in $_s; do IFS=$WS; case "$line" in "-A $2 "*" -j $3") return 0 ;; esac; done
    IFS=$WS; return 1
}
preflight_jump() { need_xtables "$1"; }
present_jump() { has_jump "$@"; }
add_jump() {
    journal "del jump $*"
    queue "$1" rules "-I $2 1 -m comment --comment \"$TAG\" -j $3"
}
del_jump() {
    local n=0   # a copy made by hand is ours too (same comment, same target); bounded
    while has_jump "$@" && [ $n -lt 8 ]; do
        run ipt -t "$1" -D "$2" -m comment --comment "$TAG" -j "$3"
        tables_changed; n=$((n + 1))
    done
}
queue_del_jump() {   # every copy with our comment (a copy made by hand is ours too)
    load_table "$1"
    local line=''
    IFS=$NL
    for line in $_s; do
        IFS=$WS
        if [ "$line" = "-A $2 -m comment --comment \"$TAG\" -j $3" ]; then queue "$1" rules "-D $2 -m comment --comment \"$TAG\" -j $3"; fi
    done
    IFS=$WS
}
