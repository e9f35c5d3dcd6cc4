# tunnelpair runtime: the constant part of every script. render.ts puts the pair's values
# (HOST TAG STACK PAIR ROOT STATE DESIRED) and chain_rules() in front of it, and a call to
# apply or remove after it. POSIX sh: dash, bash, busybox ash.
#
# A pair owns objects, one per line, "kind args...", e.g. "route 10.0.2.0/24 dev tunl1".
# apply:  removes the objects of the previous apply that are no longer desired, brings about
#         every desired object that is not there, then records the list in $STATE/manifest,
#         each line marked "own" (we made it) or "had" (it was there before us).
#         Each change first writes its undo to $STATE/journal. A failure, a signal or a cut
#         connection rolls the journal back, leaving the host as it was before the run; a
#         journal left by a run that died unannounced is rolled back by the next run.
# remove: undoes, newest first, what the manifest marks "own"; "had" objects stay.
# Host-wide settings (sysctls, the opened firewall) are reference-counted in $ROOT/.host:
# the first pair to change one saves the original, the last to let go restores it.
#
# Processes are expensive on small routers (and in the lab), and so is dash's `read`: it
# makes one system call per byte (~45 us each in the lab, 0.1 s for a 2 KB table). State is
# read once per run into variables, a file with one `cat`, and text is walked line by line
# without `read`, split once by the shell:
#     IFS=$NL; for _l in $text; do IFS=$WS; ...; done; IFS=$WS
# (the body first puts IFS back, so whatever it calls, and however it leaves the loop, splits
# words as usual; empty lines are skipped; set -f: nothing is globbed).

HOSTSTATE=$ROOT/.host
HOLDER=$STACK:$PAIR
IPT_WAIT=10
LOCK_WAIT=60
NL='
'
WS=" 	$NL"        # the default IFS
IFS=$WS
set -f          # object lines are split into words; their fields are never globbed
umask 077       # state files are root-only

say() { printf '%s\n' "tunnelpair[$TAG@$HOST]: $*" || true; }
warn() { printf '%s\n' "tunnelpair[$TAG@$HOST]: warning: $*" >&2 || true; }
die() { DIED=1; printf '%s\n' "tunnelpair[$TAG@$HOST]: error: ${STEP:+step $STEP ($OBJ): }$*" >&2 || true; exit 1; }

ipt() { iptables -w "$IPT_WAIT" "$@"; }
# dash's read returns 1 on /proc and /sys files although it has read the value: trust the value.
read_first() { _v=; read -r _v <"$1" || [ -n "$_v" ]; }   # -> $_v
sysctl_read() { read_first "/proc/sys/$1"; }
sysctl_write() { printf '%s\n' "$2" >"/proc/sys/$1"; }
# (helpers that return a value set a variable instead of printing it: a $(...) forks, and a
# fork costs ~10 ms on a small router)
reversed() {   # lines -> $_rev, last first
    _rev=; IFS=$NL
    for _l in $1; do IFS=$WS; _rev=$_l$NL$_rev; done
    IFS=$WS
}
member() { case "$NL$2$NL" in *"$NL$1$NL"*) return 0 ;; esac; return 1; }

# --- live state, read once, dropped after a change --------------------------------------
# One `ip` reads, one per line: first the route to each peer whose tunnel MTU is "auto"
# (into PEER_ROUTES, "PEER ..."; a peer without a route has no line: -force reads on), then
# the addresses (into ADDRS: the lines "N: DEV ...") and the routes (into ROUTES: the lines
# after the first address; a route never begins with a number and ": "). Its complaints
# (into IP_ERRORS) are told apart by their words; only the peers' may fail.
AUTO_PEERS=; IP_READ=0; PEER_ROUTES=; ADDRS=; ROUTES=; IP_ERRORS=
load_ip() {
    [ "$IP_READ" = 0 ] || return 0
    _q=; _k=0; for _p in $AUTO_PEERS; do _q="${_q}route get $_p$NL"; _k=$((_k + 1)); done
    _all=$(ip -4 -o -force -batch - 2>&1 <<EOF
${_q}addr show
route show table main
EOF
    ) || true
    PEER_ROUTES=; ADDRS=; ROUTES=; IP_ERRORS=; _seen=0; IFS=$NL
    for _l in $_all; do
        IFS=$WS
        case "$_l" in
            "Command failed -:"*)
                [ "${_l##*:}" -le "$_k" ] || die "ip addr show / ip route show failed: ${IP_ERRORS%"$NL"}"
                continue ;;
            "RTNETLINK answers: "* | "Error: "*) IP_ERRORS=$IP_ERRORS$_l$NL; continue ;;
        esac
        case "${_l%%": "*}" in
            *[!0-9]* | "")
                if [ "$_seen" = 1 ]; then ROUTES=$ROUTES$_l$NL
                else   # `ip route get` puts a type first for some (local, broadcast ...)
                    case "$_l" in local\ * | broadcast\ * | multicast\ * | anycast\ * | unicast\ *) _l=${_l#* } ;; esac
                    PEER_ROUTES=$PEER_ROUTES$_l$NL
                fi ;;
            *) _seen=1; ADDRS=$ADDRS$_l$NL ;;
        esac
    done
    IFS=$WS; IP_READ=1
}
ip_changed() { IP_READ=0; }
# Every table the kernel has, in one iptables-save, kept per table in SAVE_<table> until a
# change. Without -t it reads only the tables that exist: reading one by name makes the kernel
# create it, and it stays (see LINUX-FACTS). A table the kernel does not have reads empty.
TABLES_READ=0; _s=
load_table() {   # table -> $_s
    if [ "$TABLES_READ" = 0 ]; then
        _all=$(iptables-save) || die "iptables-save failed"
        for _t in filter nat mangle raw security; do eval "SAVE_$_t="; done
        _cur=; _sec=; IFS=$NL
        for _line in $_all; do
            IFS=$WS
            case "$_line" in
                "*"*) _cur=${_line#"*"}; _sec= ;;
                COMMIT) case "$_cur" in filter | nat | mangle | raw | security) eval "SAVE_$_cur=\$_sec" ;; esac; _cur= ;;
                "#"*) ;;
                *) _sec=$_sec$_line$NL ;;
            esac
        done
        IFS=$WS
        TABLES_READ=1
    fi
    eval "_s=\$SAVE_$1"
}
tables_changed() { TABLES_READ=0; }

has_addr() {    # cidr dev [peer]: ip prints a point-to-point address "inet A peer B/32"
    load_ip; _wdev=$2; _wpeer=${3-}
    if [ -n "$_wpeer" ]; then _want=${1%/32}; else _want=$1; fi
    IFS=$NL
    for _l in $ADDRS; do
        IFS=$WS
        # shellcheck disable=SC2086 # split into words on purpose
        set -- $_l
        if [ $# -lt 5 ] || [ "$2" != "$_wdev" ] || [ "$3" != inet ] || [ "$4" != "$_want" ]; then continue; fi
        if [ -n "$_wpeer" ]; then
            if [ "$5 ${6-}" = "peer $_wpeer" ]; then return 0; fi
        elif [ "$5" != peer ]; then return 0; fi
    done
    IFS=$WS; return 1
}
has_local_address() {   # address: configured on any interface
    load_ip; _want=$1; IFS=$NL
    for _l in $ADDRS; do
        IFS=$WS
        # shellcheck disable=SC2086 # split into words on purpose
        set -- $_l
        if [ $# -ge 4 ] && [ "${4%/*}" = "$_want" ]; then return 0; fi
    done
    IFS=$WS; return 1
}
route_key() { case "$1" in 0.0.0.0/0) _k=default ;; */32) _k=${1%/32} ;; *) _k=$1 ;; esac; }   # -> $_k
has_route() {   # dest dev|via X
    load_ip
    route_key "$1"
    case "$NL$ROUTES" in *"$NL$_k $2 $3$NL"* | *"$NL$_k $2 $3 "*) return 0 ;; esac
    return 1
}
chain_exists() { load_table "$1"; case "$NL$_s" in *"$NL:$2 "*) return 0 ;; esac; return 1; }
chain_live() {  # table chain -> $_live: its rules as iptables-save prints them
    load_table "$1"; _live=; IFS=$NL
    for _line in $_s; do IFS=$WS; case "$_line" in "-A $2 "*) _live=$_live$_line$NL ;; esac; done
    IFS=$WS
}
has_jump() {    # table from chain
    load_table "$1"; IFS=$NL
    for _line in $_s; do IFS=$WS; case "$_line" in "-A $2 "*" -j $3") return 0 ;; esac; done
    IFS=$WS; return 1
}
# a file -> $_c, each of its lines ending in a newline; one process however long the file
slurp() { [ -e "$1" ] || return 1; _c=$(cat "$1") || return 1; _c=${_c:+$_c$NL}; }

# --- the ipip device ----------------------------------------------------------------------
dev_exists() { [ -e "/sys/class/net/$1" ]; }
# (no "a && b" as a function's last command: under set -e a false b would end the script)
dev_alias() { _v=; if [ -r "/sys/class/net/$1/ifalias" ]; then read_first "/sys/class/net/$1/ifalias" || true; fi; }   # -> $_v
dev_up() { read_first "/sys/class/net/$1/flags" && [ $((_v & 1)) -eq 1 ]; }
# "local remote ttl" of an ipip device as `ip -d link` reports them; ttl 0 reads "inherit".
tunnel_params() {   # -> $_tp
    _tp=
    _d=$(ip -d -o link show dev "$1") || return 1
    case "$_d" in *" link/ipip "*) ;; *) _tp=not-ipip; return 0 ;; esac
    # shellcheck disable=SC2086 # split into words on purpose
    set -- $_d
    _l=; _r=; _t=
    while [ $# -gt 1 ]; do
        case "$1" in local) _l=$2 ;; remote) _r=$2 ;; ttl) _t=$2 ;; esac
        shift
    done
    _tp="$_l $_r $_t"
}
check_owner() {   # refuses, before anything changes, a device of that name that is not ours
    dev_exists "$1" || return 0
    dev_alias "$1"; _a=$_v
    [ "$_a" = "$TAG" ] || die "$1 exists and is not ours (ifalias '$_a', expected '$TAG'); it was left untouched"
}
resolve_mtu() {   # value peer -> $_mtu_v: "auto" is the MTU of the route to the peer - 20
    if [ "$1" != auto ]; then _mtu_v=$1; return 0; fi
    load_ip
    case "$NL$PEER_ROUTES" in *"$NL$2 "*) ;; *) die "no route to the peer $2${IP_ERRORS:+ (ip: ${IP_ERRORS%"$NL"})}" ;; esac
    _route=$NL$PEER_ROUTES; _route=${_route#*"$NL$2 "}; _route=${_route%%"$NL"*}
    # shellcheck disable=SC2086 # split into words on purpose
    set -- $_route
    _dev=; _mtu=
    while [ $# -gt 1 ]; do case "$1" in dev) _dev=$2 ;; mtu) _mtu=$2 ;; esac; shift; done
    if [ -z "$_mtu" ]; then read_first "/sys/class/net/$_dev/mtu" || die "cannot read the MTU of $_dev"; _mtu=$_v; fi
    _mtu_v=$((_mtu - 20))
}


# --- presence -------------------------------------------------------------------------------
present() {
    kind=$1; shift
    case "$kind" in
        link) dev_exists "$1" && dev_alias "$1" && [ "$_v" = "$TAG" ] && tunnel_params "$1" && [ "$_tp" = "$2 $3 $4" ] ;;
        mtu) dev_exists "$1" && read_first "/sys/class/net/$1/mtu" && _now=$_v && resolve_mtu "$2" "$3" && [ "$_now" = "$_mtu_v" ] ;;
        state) dev_exists "$1" && dev_up "$1" ;;
        devsysctl) [ -e "/proc/sys/net/ipv4/conf/$1/$2" ] && sysctl_read "net/ipv4/conf/$1/$2" && [ "$_v" = "$3" ] ;;
        addr) has_addr "$1" "$2" "${5-}" ;;
        route) has_route "$@" ;;
        sysctl) holds sysctl "$1" && sysctl_read "$1" && [ "$_v" = "$2" ] ;;
        gateway) holds gateway default && has_gateway "$1" ;;
        noroute) holds noroute "$1" && ! has_dest "$1" ;;
        chain)   # ours, as we built it, and nobody has edited it since
            chain_rules "$2"
            slurp "$STATE/chains/$2.rules" && [ "$_c" = "$_rules" ] &&
                slurp "$STATE/chains/$2.live" && chain_live "$1" "$2" && [ "$_c" = "$_live" ] ;;
        jump) has_jump "$@" ;;
        fwopen) holds fw open ;;
        *) die "unknown object kind '$kind'" ;;
    esac
}

# Only these can be there before the pair is; they then stay when the pair goes.
adoptable() { case "$1" in addr | route) return 0 ;; esac; return 1; }

# --- changes: each writes its undo to the journal before it acts -------------------------
journal() { printf '%s\n' "$*" >>"$STATE/journal"; }
run() {   # runs a command (stdin and stdout its own); its failure fails the step with its message
    { _e=$("$@" 2>&1 >&3); } 3>&1 || die "$* failed: $_e"
}

add() {
    kind=$1; shift
    case "$kind" in
        link)
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
            fi ;;
        mtu)
            # a device made in this run has no MTU to go back to: it goes as a whole
            if dev_exists "$1"; then read_first "/sys/class/net/$1/mtu"; journal "add mtu $1 $_v $3"; fi
            resolve_mtu "$2" "$3"
            ipq link set dev "$1" mtu "$_mtu_v" ;;
        state) journal "add down $1"; ipq link set dev "$1" up ;;
        down) run ip link set dev "$1" down; ip_changed ;;
        devsysctl)
            sysctl_read "net/ipv4/conf/$1/$2"
            journal "add devsysctl $1 $2 $_v"
            run sysctl_write "net/ipv4/conf/$1/$2" "$3" ;;
        addr)   # cidr dev label|- prefixroute|noprefixroute [peer]
            journal "del addr $*"
            _cidr=$1; _dev=$2; _pr=$4; _peer=${5-}
            if [ "$3" = - ]; then set --; else set -- label "$3"; fi
            [ "$_pr" = noprefixroute ] && set -- "$@" noprefixroute
            [ -z "$_peer" ] || set -- peer "$_peer" "$@"
            ipq addr add "$_cidr" dev "$_dev" "$@" ;;
        route) journal "del route $*"; ipq route add "$@" ;;
        sysctl) shared_add sysctl "$1" "$2" ;;
        chain) chain_build "$1" "$2" ;;
        jump)
            journal "del jump $*"
            queue "$1" rules "-I $2 1 -m comment --comment \"$TAG\" -j $3" ;;
        fwopen) shared_add fw open ;;
        gateway) shared_add gateway default "$1" ;;
        noroute) shared_add noroute "$1" ;;
        *) die "unknown object kind '$kind'" ;;
    esac
}

del() {   # tolerates what is already gone; a command that fails fails it, with its message
    kind=$1; shift
    case "$kind" in
        link)
            dev_exists "$1" || return 0
            dev_alias "$1"
            [ "$_v" = "$TAG" ] || { warn "$1 is no longer ours; left alone"; return 0; }
            run ip link del dev "$1"; ip_changed ;;
        newlink)   # made by this run: no device of this name existed before it (preflight)
            dev_exists "$1" || return 0
            dev_alias "$1"; _a=$_v
            if [ -n "$_a" ] && [ "$_a" != "$TAG" ]; then warn "$1 is no longer ours; left alone"; return 0; fi
            run ip link del dev "$1"; ip_changed ;;
        mtu | state | down | devsysctl) ;;   # settings of our own device go with it
        addr)   # (a point-to-point address is deleted by its local and peer addresses both)
            has_addr "$1" "$2" "${5-}" || return 0
            if [ -n "${5-}" ]; then run ip addr del "$1" peer "$5" dev "$2"; else run ip addr del "$1" dev "$2"; fi
            ip_changed ;;
        route) has_route "$@" || return 0; run ip route del "$@"; ip_changed ;;
        sysctl) shared_del sysctl "$1" ;;
        chain)
            if chain_exists "$1" "$2"; then run ipt -t "$1" -F "$2"; run ipt -t "$1" -X "$2"; fi
            rm -f "$STATE/chains/$2.rules" "$STATE/chains/$2.live"
            tables_changed ;;
        jump)
            _n=0   # a copy made by hand is ours too (same comment, same target); bounded
            while has_jump "$@" && [ $_n -lt 8 ]; do
                run ipt -t "$1" -D "$2" -m comment --comment "$TAG" -j "$3"
                tables_changed; _n=$((_n + 1))
            done ;;
        fwopen) shared_del fw open ;;
        gateway) shared_del gateway default ;;
        noroute) shared_del noroute "$1" ;;
        *) die "unknown object kind '$kind'" ;;
    esac
}

# --- chains the pair owns, rebuilt atomically with iptables-restore --noflush --------------
chain_restore() {   # table chain rules-file (rollback: at once)
    slurp "$3" || _c=
    run iptables-restore -w "$IPT_WAIT" --noflush <<EOF
*$1
:$2 - [0:0]
${_c}COMMIT
EOF
    tables_changed
    chain_live "$1" "$2"; printf '%s' "$_live" >"$STATE/chains/$2.live"
}
chain_build() {     # table chain
    if chain_exists "$1" "$2"; then
        [ -d "$STATE/undo" ] || mkdir "$STATE/undo"   # ($STATE/chains: made by make_dirs)
        chain_live "$1" "$2"; printf '%s' "$_live" >"$STATE/undo/$2.rules"
        journal "chainrestore $1 $2 $STATE/undo/$2.rules"
    else
        journal "del chain $1 $2"
    fi
    chain_rules "$2"; printf '%s' "$_rules" >"$STATE/chains/$2.rules"
    queue "$1" decl ":$2 - [0:0]"
    [ -z "$_rules" ] || queue "$1" rules "${_rules%"$NL"}"
    QUEUED_CHAINS="$QUEUED_CHAINS $1:$2"
}
# A run's changes to devices, addresses and routes go to the kernel in one `ip -batch`, at
# the first object that is not one of them (or needs them made: a device's own sysctl), for
# the same reason; the journal holds their undo as they queue. `ip -batch` stops at the first
# command that fails: the ones before it are undone by the rollback like any other step.
IPQ_CMDS=; IPQ_OBJS=   # the queued commands, and "step object" for each; empty: nothing queued
ipq() {   # ip arguments (no value has a blank in it)
    IPQ_CMDS="$IPQ_CMDS$*$NL"
    IPQ_OBJS="$IPQ_OBJS$STEP $OBJ$NL"
}
flush_ip() {
    [ -n "$IPQ_OBJS" ] || return 0
    _objs=$IPQ_OBJS; _cmds=$IPQ_CMDS; IPQ_OBJS=; IPQ_CMDS=; ip_changed
    _e=$(ip -batch - 2>&1 >/dev/null <<EOF
$_cmds
EOF
    ) && return 0
    # "Command failed -:N": the Nth queued command, and the object it was for
    _n=${_e##*:}; _i=0; IFS=$NL
    for _o in $_objs; do IFS=$WS; _i=$((_i + 1)); if [ "$_i" = "$_n" ]; then STEP=${_o%% *}; OBJ=${_o#* }; fi; done
    IFS=$WS
    die "ip failed: $_e"
}

# A run's chains and jumps go to the kernel in one iptables-restore --noflush, every table
# in it, at the first object that is not one of them: every xtables program reads and writes
# whole tables, tens of milliseconds each on a small router. Their undo is journaled as they
# queue; each table's commit is atomic, so a refused table changes nothing.
# A table's batch is kept in PENDING_<table>_decl and PENDING_<table>_rules.
QUEUED_TABLES=; QUEUED_CHAINS=
queue() {   # table decl|rules lines
    case " $QUEUED_TABLES " in
        *" $1 "*) ;;
        *) QUEUED_TABLES="$QUEUED_TABLES $1"; eval "PENDING_$1_decl=; PENDING_$1_rules=" ;;
    esac
    eval "PENDING_$1_$2=\$PENDING_$1_$2\$3\$NL"
}
flush_queue() {
    [ -n "$QUEUED_TABLES" ] || return 0
    _in=
    for _t in $QUEUED_TABLES; do
        eval "_in=\$_in'*'\$_t\$NL\$PENDING_${_t}_decl\$PENDING_${_t}_rules"
        _in=${_in}COMMIT$NL
    done
    # (each table commits at its COMMIT: if a later one is refused, the rollback undoes the
    # earlier, whose undo is journaled like the rest)
    run iptables-restore -w "$IPT_WAIT" --noflush <<EOF
$_in
EOF
    tables_changed
    for _q in $QUEUED_CHAINS; do chain_live "${_q%%:*}" "${_q#*:}"; printf '%s' "$_live" >"$STATE/chains/${_q#*:}.live"; done
    QUEUED_TABLES=; QUEUED_CHAINS=
}

# --- host-wide settings, reference-counted ----------------------------------------------------
# Writing ip_forward rewrites other sysctls (every conf.*.forwarding, conf.all.accept_redirects):
# they are saved with it and restored after it.
sysctl_companions() {   # key -> $_comp
    _comp=
    [ "$1" = net/ipv4/ip_forward ] || return 0
    _comp=net/ipv4/conf/all/accept_redirects
    set +f
    for _f in /proc/sys/net/ipv4/conf/*/forwarding; do _comp="$_comp ${_f#/proc/sys/}"; done
    set -f
}
# Each shared value has a directory: its original ("orig") and one file per pair holding it.
shared_dir() {   # class key -> $_sd
    case "$1" in
        sysctl) _sd=$HOSTSTATE/sysctl/$2 ;;
        noroute) _sd=$HOSTSTATE/noroute/${2%/*}_${2##*/} ;;
        *) _sd=$HOSTSTATE/$1/$2 ;;
    esac
}
holds() { shared_dir "$1" "$2"; [ -e "$_sd/holders/$HOLDER" ]; }
others_hold() {   # dir: a pair other than this one holds the value
    set +f
    for _h in "$1/holders/"* "$1/holders/".[!.]* "$1/holders/"..?*; do
        if [ -e "$_h" ] && [ "${_h##*/}" != "$HOLDER" ]; then set -f; return 0; fi
    done
    set -f; return 1
}
# a route as `ip route show` prints it -> $_ra, as `ip route add` arguments (its flags dropped)
route_args() { _ra=; for _w in $1; do case "$_w" in linkdown | dead) ;; *) _ra="$_ra $_w" ;; esac; done; }

shared_add() {   # sysctl KEY VALUE | fw open | gateway default VIA | noroute DEST
    shared_dir "$1" "$2"; _dir=$_sd
    case "$1" in
        sysctl) _undo="del sysctl $2" ;; fw) _undo="del fwopen" ;;
        gateway) _undo="del gateway $3" ;; noroute) _undo="del noroute $2" ;;
    esac
    if [ ! -e "$_dir/orig" ]; then
        [ -d "$_dir/holders" ] || mkdir -p "$_dir/holders"   # (made with the run's state, as a rule)
        journal "$_undo"
        case "$1" in
            sysctl)
                sysctl_companions "$2"
                { sysctl_read "$2" && printf '%s %s\n' "$2" "$_v"
                  for _k in $_comp; do sysctl_read "$_k" && printf '%s %s\n' "$_k" "$_v"; done
                } >"$_dir/orig.new" ;;
            fw) run iptables-save >"$_dir/orig.new" ;;
            gateway) run ip -4 route show default >"$_dir/orig.new" ;;
            noroute) run ip -4 route show exact "$2" >"$_dir/orig.new" ;;
        esac
        mv "$_dir/orig.new" "$_dir/orig"
    elif [ ! -e "$_dir/holders/$HOLDER" ]; then
        journal "$_undo"
    fi
    : >"$_dir/holders/$HOLDER"
    case "$1" in
        sysctl) sysctl_read "$2"; [ "$_v" = "$3" ] || run sysctl_write "$2" "$3" ;;
        fw) fw_open ;;
        gateway)
            has_gateway "$3" && return 0
            _n=0; while has_default && [ $_n -lt 8 ]; do run ip route del default; ip_changed; _n=$((_n + 1)); done
            run ip route add default via "$3"; ip_changed ;;
        noroute)
            _n=0; while has_dest "$2" && [ $_n -lt 8 ]; do run ip route del "$2"; ip_changed; _n=$((_n + 1)); done ;;
    esac
}
shared_del() {
    shared_dir "$1" "$2"; _dir=$_sd
    [ -d "$_dir" ] || return 0
    # another pair still holds it: this one lets go, the value stays
    if others_hold "$_dir"; then rm -f "$_dir/holders/$HOLDER"; return 0; fi
    # Every step of the restore is tried; what could not be put back is said (with the value,
    # to be set by hand), and the saved state goes all the same: kept, a later destroy would
    # only repeat the steps that worked (deleting a default route the admin has put back).
    _bad=
    if [ -e "$_dir/orig" ]; then
        case "$1" in
            sysctl)   # the key itself comes first in the file: writing it rewrites the others
                slurp "$_dir/orig"; IFS=$NL
                for _l in $_c; do
                    IFS=$WS; _k=${_l%% *}; _o=${_l#* }
                    [ -e "/proc/sys/$_k" ] || continue
                    sysctl_read "$_k"
                    [ "$_v" = "$_o" ] || sysctl_write "$_k" "$_o" 2>/dev/null || _bad="$_bad; $_k = $_o"
                done
                IFS=$WS ;;
            fw)
                _e=$(iptables-restore -w "$IPT_WAIT" "$_dir/orig" 2>&1) || _bad="; the firewall saved in $_dir/orig ($_e)"
                tables_changed ;;
            gateway | noroute)
                if [ "$1" = gateway ]; then
                    _n=0; while has_default && [ $_n -lt 8 ]; do ip route del default 2>/dev/null || break; ip_changed; _n=$((_n + 1)); done
                fi
                slurp "$_dir/orig"; IFS=$NL
                for _l in $_c; do
                    IFS=$WS; route_args "$_l"
                    # shellcheck disable=SC2086 # the saved route, split into its arguments
                    _e=$(ip route add $_ra 2>&1) || _bad="$_bad; route '$_l' ($_e)"
                done
                IFS=$WS
                ip_changed ;;
        esac
    fi
    rm -rf "$_dir"
    prune "${_dir%/*}"
    [ -z "$_bad" ] || die "could not put back${_bad#;}"
}
has_default() { load_ip; case "$NL$ROUTES" in *"${NL}default "*) return 0 ;; esac; return 1; }
has_gateway() { load_ip; case "$NL$ROUTES" in *"${NL}default via $1 "*) return 0 ;; esac; return 1; }
has_dest() { load_ip; route_key "$1"; case "$NL$ROUTES" in *"$NL$_k "*) return 0 ;; esac; return 1; }
# The how-to's "stop the firewall": every table the host has, emptied, every policy ACCEPT.
fw_open() {
    _all=$(iptables-save) || die "iptables-save failed"
    _open=; IFS=$NL
    for _l in $_all; do
        IFS=$WS
        # shellcheck disable=SC2086 # split into words on purpose
        set -- $_l
        case "${1-}" in
            "*"*) _open=$_open$1$NL ;;
            :*) [ "${2-}" = - ] || _open="$_open$1 ACCEPT [0:0]$NL" ;;
            COMMIT) _open=${_open}COMMIT$NL ;;
        esac
    done
    IFS=$WS
    run iptables-restore -w "$IPT_WAIT" <<EOF
$_open
EOF
    tables_changed
}

prune() {   # removes empty state directories from $1 up to and including $ROOT
    _d=$1
    while [ "${_d#"$ROOT"}" != "$_d" ]; do
        rmdir "$_d" 2>/dev/null || return 0
        [ "$_d" = "$ROOT" ] && return 0
        _d=${_d%/*}
    done
}
tidy() {   # the journal is emptied (without a process), the undo copies of chains go
    : >"$STATE/journal"
    [ ! -d "$STATE/undo" ] || rm -rf "$STATE/undo"
}

# --- rollback -------------------------------------------------------------------------------
rollback() {
    [ -s "$STATE/journal" ] || return 0
    slurp "$STATE/journal"; reversed "$_c"; _undo=$_rev
    : >"$STATE/journal"   # undo steps journal into a scratch file that is thrown away
    IFS=$NL
    for _u in $_undo; do
        IFS=$WS
        # shellcheck disable=SC2086
        (set -- $_u; op=$1; shift
         case "$op" in add) add "$@"; flush_queue; flush_ip ;; del) del "$@" ;; chainrestore) chain_restore "$@" ;; esac
        ) || warn "undo of '$_u' failed"
    done
    IFS=$WS
    tidy
    ip_changed; tables_changed
}

finish() {
    _rc=$?
    IFS=$WS   # (a signal may come inside a loop's split)
    trap - EXIT
    trap '' HUP INT TERM PIPE   # a cut connection must not stop the rollback
    set +e
    # a command that failed under set -e said why, but not where
    [ "$_rc" -eq 0 ] || [ "$DIED" = 1 ] || warn "step ${STEP:-preflight} (${OBJ:-}) failed with exit $_rc"
    if [ "$_rc" -ne 0 ] && [ "$COMMITTED" = 0 ] && [ -d "$STATE" ]; then
        STEP=
        rollback
        prune_made
        [ "$FRESH" = 1 ] && { rm -rf "$STATE"; prune "${STATE%/*}"; }
        warn "nothing was changed: the host is as it was before this run"
    fi
    exit "$_rc"
}

lock() {   # one tunnelpair run at a time per host; /var/lib is locked, not written
    command -v flock >/dev/null 2>&1 || die "flock (util-linux) is required"
    exec 9</var/lib
    flock -w "$LOCK_WAIT" 9 || die "another tunnelpair run held the lock for ${LOCK_WAIT}s"
}

preflight() {   # nothing has changed yet: refuse what cannot work
    command -v ip >/dev/null 2>&1 || die "'ip' is required"
    # the auto-MTU peers first: the loop below reads the addresses (load_ip) at the link, and
    # that one read takes the routes to these peers too
    IFS=$NL
    for _l in $DESIRED; do IFS=$WS; case "$_l" in "mtu "*" auto "*) AUTO_PEERS="$AUTO_PEERS ${_l##* }" ;; esac; done
    IFS=$WS; AUTO_PEERS=${AUTO_PEERS# }
    _ipip=0; IFS=$NL
    for _l in $DESIRED; do
        IFS=$WS
        # shellcheck disable=SC2086 # kind args...
        set -- $_l
        case "$1" in
            link)
                _ipip=1
                check_owner "$2"
                has_local_address "$3" || die "the underlay address $3 is not configured on this host" ;;
            chain | jump | fwopen)
                for _p in iptables iptables-save iptables-restore; do
                    command -v "$_p" >/dev/null 2>&1 || die "'$_p' is required for the firewall rules"
                done ;;
        esac
    done
    IFS=$WS
    # Loading ipip is the one change never undone: unloading is unsafe while any ipip
    # device exists anywhere, and the kernel then keeps a tunl0 in every namespace.
    if [ "$_ipip" = 1 ] && [ ! -d /sys/module/ipip ]; then
        modprobe ipip 2>/dev/null || [ -d /sys/module/ipip ] || die "this kernel cannot do ipip (modprobe ipip failed)"
    fi
}

# One mkdir for the directories a run may need: its state, and the directory of each host-wide
# value it is to hold that no pair holds yet. A run that fails prunes those it left empty.
MADE=
make_dirs() {
    set -- "$STATE/chains"
    IFS=$NL
    for _l in $DESIRED; do
        IFS=$WS
        case "$_l" in
            "sysctl "*) _k=${_l#sysctl }; shared_dir sysctl "${_k%% *}" ;;
            fwopen) shared_dir fw open ;;
            "gateway "*) shared_dir gateway default ;;
            "noroute "*) shared_dir noroute "${_l#noroute }" ;;
            *) continue ;;
        esac
        if [ ! -d "$_sd/holders" ]; then set -- "$@" "$_sd/holders"; MADE="$MADE $_sd"; fi
    done
    IFS=$WS
    if [ $# -gt 1 ] || [ ! -d "$STATE/chains" ]; then mkdir -p "$@"; fi
}
prune_made() { for _d in $MADE; do [ -e "$_d/orig" ] || prune "$_d/holders"; done; }

# --- entry points -------------------------------------------------------------------------------
COMMITTED=0; FRESH=0; DIED=0; STEP=; OBJ=
apply() {
    lock
    trap finish EXIT
    trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 141' PIPE; trap 'exit 143' TERM
    preflight
    [ -d "$STATE" ] || FRESH=1
    make_dirs
    rollback   # a journal left here: an earlier run died before it could undo itself
    if [ "$FRESH" = 0 ] && [ ! -e "$STATE/manifest" ]; then FRESH=1; fi
    _old=; slurp "$STATE/manifest" && _old=$_c
    reversed "$_old"
    _added=0; _removed=0; _kept=0
    # Stale objects go first, newest first: they may hold names or addresses the new need.
    IFS=$NL
    for _entry in $_rev; do
        IFS=$WS; own=${_entry%% *}; line=${_entry#* }
        [ "$line" != "$_entry" ] || continue   # (one word: a damaged line)
        member "$line" "$DESIRED" && continue
        [ "$own" = own ] || continue
        OBJ=$line; STEP=remove
        journal "add $line"
        # shellcheck disable=SC2086
        del $line
        say "- $line"
        _removed=$((_removed + 1))
    done
    IFS=$WS
    _new=; STEP=0; IFS=$NL
    for line in $DESIRED; do
        IFS=$WS
        STEP=$((STEP + 1)); OBJ=$line
        # shellcheck disable=SC2086
        if present $line; then
            _kept=$((_kept + 1))
            if member "own $line" "$_old"; then _new="${_new}own $line$NL"
            elif member "had $line" "$_old" || adoptable $line; then
                member "had $line" "$_old" || say "= $line (already there: it stays after destroy)"
                _new="${_new}had $line$NL"
            else _new="${_new}own $line$NL"; fi
            continue
        fi
        case "$line" in chain\ * | jump\ *) ;; *) flush_queue ;; esac
        case "$line" in link\ * | mtu\ * | state\ * | addr\ * | route\ *) ;; *) flush_ip ;; esac
        # shellcheck disable=SC2086
        add $line
        _new="${_new}own $line$NL"
        say "+ $line"
        _added=$((_added + 1))
    done
    IFS=$WS
    flush_queue
    flush_ip
    # said before the commit: a connection cut by now fails this write, and the run rolls back
    say "applied: $_added added, $_removed removed, $_kept unchanged"
    printf '%s' "$_new" >"$STATE/manifest.new"
    mv "$STATE/manifest.new" "$STATE/manifest"
    COMMITTED=1
    tidy
}

# remove: what is there of a chain or jump goes into its table's batch (read from the table
# as this shell has it); one iptables-restore per table then removes them all, or none.
queue_removal() {   # chain|jump table ...
    case "$1" in
        jump)   # table from chain: every copy with our comment (a copy made by hand is ours too)
            load_table "$2"; IFS=$NL
            for _line in $_s; do
                IFS=$WS
                if [ "$_line" = "-A $3 -m comment --comment \"$TAG\" -j $4" ]; then queue "$2" rules "-D $3 -m comment --comment \"$TAG\" -j $4"; fi
            done
            IFS=$WS ;;
        chain)
            # (its files in $STATE/chains go with $STATE)
            if chain_exists "$2" "$3"; then queue "$2" rules "-F $3"; queue "$2" rules "-X $3"; fi ;;
    esac
}
remove_queued() {   # the batch, all or nothing; a refusal keeps its objects listed
    [ -n "$_batch" ] || return 0
    if _e=$(flush_queue 2>&1); then
        IFS=$NL; for _o in $_batch; do IFS=$WS; say "- ${_o#* }"; done; IFS=$WS
    else
        warn "removing the firewall rules failed: $_e"
        reversed "$_batch"; _left="$_rev$_left"
        IFS=$NL; for _o in $_batch; do IFS=$WS; _failed=$((_failed + 1)); done; IFS=$WS
    fi
    QUEUED_TABLES=; QUEUED_CHAINS=; _batch=
    tables_changed
}

remove() {
    lock
    if [ ! -d "$STATE" ]; then say "nothing to remove"; prune "${STATE%/*}"; return 0; fi
    rollback
    _left=; _failed=0; _batch=
    _old=; slurp "$STATE/manifest" && _old=$_c
    reversed "$_old"
    IFS=$NL
    for _entry in $_rev; do
        IFS=$WS; own=${_entry%% *}; line=${_entry#* }
        [ "$line" != "$_entry" ] || continue   # (one word: a damaged line)
        if [ "$own" != own ]; then say "= $line (was there before us: left in place)"; continue; fi
        case "$line" in
            chain\ * | jump\ *)
                # shellcheck disable=SC2086
                queue_removal $line
                _batch="$_batch$own $line$NL"
                continue ;;
        esac
        remove_queued
        # (in a subshell, its messages kept: a failure is reported, and the loop goes on)
        # shellcheck disable=SC2086
        if _e=$(del $line 2>&1); then
            [ -z "$_e" ] || printf '%s\n' "$_e" >&2
            say "- $line"
        else
            warn "removing $line failed: $_e"
            _left="$own $line$NL$_left"
            _failed=$((_failed + 1))
        fi
        # the del ran in a subshell: forget here what it may have changed
        case "$line" in fwopen) tables_changed ;; *) ip_changed ;; esac
    done
    IFS=$WS
    remove_queued
    if [ "$_failed" -gt 0 ]; then
        printf '%s' "$_left" >"$STATE/manifest"
        die "$_failed objects could not be removed; they stay listed in $STATE/manifest for the next destroy"
    fi
    rm -rf "$STATE"
    prune "${STATE%/*}"
    say "removed"
}
