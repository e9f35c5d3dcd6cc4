# --- host-wide values, reference-counted ----------------------------------------------------
# A value of the whole host (a sysctl, the default route, the opened firewall) may be needed
# by several pairs. Each has a directory in $HOSTSTATE: its original ("orig") and one file per
# pair holding it (holders/). The first pair to hold it saves the original, the last to let
# go restores it. A host-wide kind K has, besides its preflight_/present_/add_/del_ (which
# use need_dir, holds, hold and release below):
#   dir_K ARGS -> $_sd  its directory
#   save_K ARGS         prints the original (into orig), when no pair holds the value yet
#   set_K ARGS          brings the value about, for every holder (it may be there already)
#   restore_K DIR       puts the original in DIR/orig back, every step tried; what it could
#                       not put back it appends to $_bad ("; what (why)")
need_dir() { [ -d "$_sd/holders" ] || MADE="$MADE $_sd"; }   # (after dir_K) made by make_dirs
holds() { local k="$1"; shift; "dir_$k" "$@"; [ -e "$_sd/holders/$HOLDER" ]; }
others_hold() {   # dir: a pair other than this one holds the value
    local h=''
    set +f
    for h in "$1/holders/"* "$1/holders/".[!.]* "$1/holders/"..?*; do
        if [ -e "$h" ] && [ "${h##*/}" != "$HOLDER" ]; then set -f; return 0; fi
    done
    set -f; return 1
}
hold() {   # kind args: this pair holds the value (add_K)
    local k="$1" dir=''
    shift
    "dir_$k" "$@"; dir=$_sd
    if [ ! -e "$dir/orig" ]; then
        [ -d "$dir/holders" ] || mkdir -p "$dir/holders"   # (made with the run's state, as a rule)
        journal "del $k${*:+ $*}"
        "save_$k" "$@" >"$dir/orig.new"
        mv "$dir/orig.new" "$dir/orig"
    elif [ ! -e "$dir/holders/$HOLDER" ]; then
        journal "del $k${*:+ $*}"
    else
        # held, and changed since (a reboot, a reload, the admin): the undo puts back what this
        # run found, and the pair goes on holding it
        HELD_N=$((HELD_N + 1))
        mkdir -p "$STATE/undo/held/$HELD_N"
        "save_$k" "$@" >"$STATE/undo/held/$HELD_N/orig"
        journal "reheld $k $STATE/undo/held/$HELD_N"
    fi
    : >"$dir/holders/$HOLDER"
    "set_$k" "$@"
}
HELD_N=0; REMOVING=0
reheld() {   # kind dir: the undo of hold on a value the pair already held: the value as it was
    _bad=
    "restore_$1" "$2"
    [ -z "$_bad" ] || die "could not put back${_bad#;}"
}
release() {   # kind args: this pair lets go of the value (del_K)
    local k="$1" dir=''
    shift
    "dir_$k" "$@"; dir=$_sd
    [ -d "$dir" ] || return 0
    # another pair still holds it: this one lets go, the value stays (remove deletes what
    # release would, its holder file or the whole directory, with its own state, in one rm)
    if others_hold "$dir"; then [ "$REMOVING" = 1 ] || rm -f "$dir/holders/$HOLDER"; return 0; fi
    # Every step of the restore is tried; what could not be put back is said (with the value,
    # to be set by hand), and the saved state goes all the same: kept, a later destroy would
    # only repeat the steps that worked (deleting a default route the admin has put back).
    _bad=
    if [ -e "$dir/orig" ]; then "restore_$k" "$dir"; fi
    if [ "$REMOVING" = 0 ]; then rm -rf "$dir"; prune "${dir%/*}"; fi
    [ -z "$_bad" ] || die "could not put back${_bad#;}"
}

# --- sysctl: a host-wide sysctl, the key in /proc/sys form: "sysctl KEY VALUE" ---------------
kind sysctl -
# Writing ip_forward rewrites other sysctls (every conf.*.forwarding, conf.all.accept_redirects),
# and writing IPv6's conf.all.forwarding every IPv6 conf.*.forwarding (and with it whether each
# interface takes router advertisements): they are saved with it and restored after it.
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
dir_sysctl() { _sd=$HOSTSTATE/sysctl/$1; }
save_sysctl() {   # the key first, then its companions: "KEY VALUE" a line
    local k=''
    sysctl_companions "$1"
    for k in "$1" $_comp; do
        if sysctl_read "$k"; then printf '%s %s\n' "$k" "$_v"; fi
    done
}
set_sysctl() { sysctl_read "$1"; [ "$_v" = "$2" ] || run sysctl_write "$1" "$2"; }
restore_sysctl() {   # the key itself comes first in the file: writing it rewrites the others
    local l='' k='' o=''
    slurp "$1/orig"; IFS=$NL
    for l in $_c; do
        IFS=$WS; k=${l%% *}; o=${l#* }
        [ -e "/proc/sys/$k" ] || continue
        sysctl_read "$k"
        [ "$_v" = "$o" ] || sysctl_write "$k" "$o" 2>/dev/null || _bad="$_bad; $k = $o"
    done
    IFS=$WS
}
# Turning IPv6 forwarding on makes the kernel drop at once the default routes router
# advertisements gave, and ignore advertisements from then on (but on an interface with
# accept_ra 2): those routes would not come back, not even after destroy, and the addresses
# they gave (dynamic) would expire. Refused before anything changes, naming what and where.
ra_check() {   # the value forwarding is to take
    local l='' w='' prev=''
    [ "$1" = 1 ] && sysctl_read net/ipv6/conf/all/forwarding && [ "$_v" = 0 ] || return 0
    load_ip6
    IFS=$NL
    for l in $ROUTES6; do   # "... dev DEV proto ra ...": the device after "dev"
        IFS=$WS
        case " $l " in *" proto ra "*) ;; *) continue ;; esac
        prev=
        for w in $l; do if [ "$prev" = dev ]; then ra_kept "$w" "$l"; fi; prev=$w; done
    done
    IFS=$NL
    for l in $ADDRS6; do   # "N: DEV inet6 ADDR ... dynamic ...": an address autoconfigured
        IFS=$WS
        case " $l " in *" dynamic "*) ;; *) continue ;; esac
        # shellcheck disable=SC2086 # split into words on purpose
        set -- $l
        ra_kept "$2" "$l"
    done
    IFS=$WS
}
ra_kept() {   # dev line: dies unless the device keeps taking advertisements with forwarding on
    sysctl_read "net/ipv6/conf/$1/accept_ra" && [ "$_v" != 2 ] || return 0
    die "turning IPv6 forwarding on would drop what router advertisements gave $1 ($2) and ignore them from then on: set net.ipv6.conf.$1.accept_ra to 2, which keeps them with forwarding on, or configure $1 statically, and run again"
}
preflight_sysctl() { dir_sysctl "$1"; need_dir; [ "$1" != net/ipv6/conf/all/forwarding ] || ra_check "$2"; }
present_sysctl() { holds sysctl "$1" && sysctl_read "$1" && [ "$_v" = "$2" ]; }
add_sysctl() { hold sysctl "$@"; }
del_sysctl() { release sysctl "$@"; }

# --- gateway: the host's default route goes via GATEWAY: "gateway GATEWAY" -------------------
kind gateway -
has_gateway() { load_ip; case "$NL$ROUTES" in *"${NL}default via $1 "*) return 0 ;; esac; return 1; }
# a route as `ip route show` prints it -> $_ra, as `ip route add` arguments (its flags dropped)
route_args() { local w=''; _ra=; for w in $1; do case "$w" in linkdown | dead) ;; *) _ra="$_ra $w" ;; esac; done; }
restore_routes() {   # dir: the routes saved in its orig added back (gateway, noroute)
    local l='' e=''
    slurp "$1/orig"; IFS=$NL
    for l in $_c; do
        IFS=$WS; route_args "$l"
        # shellcheck disable=SC2086 # the saved route, split into its arguments
        e=$(ip route add $_ra 2>&1) || _bad="$_bad; route '$l' ($e)"
    done
    IFS=$WS
    ip_changed
}
dir_gateway() { _sd=$HOSTSTATE/gateway/default; }   # one default route, whichever gateway
save_gateway() { run ip -4 route show default; }
set_gateway() {
    has_gateway "$1" && return 0
    local n=0
    while has_default && [ $n -lt 8 ]; do run ip route del default; ip_changed; n=$((n + 1)); done
    run ip route add default via "$1"; ip_changed
}
restore_gateway() {
    local n=0
    while has_default && [ $n -lt 8 ]; do ip route del default 2>/dev/null || break; ip_changed; n=$((n + 1)); done
    restore_routes "$1"
}
preflight_gateway() { dir_gateway "$1"; need_dir; }
present_gateway() { holds gateway "$1" && has_gateway "$1"; }
add_gateway() { hold gateway "$@"; }
del_gateway() { release gateway "$@"; }

# --- noroute: the host's routes to DEST removed: "noroute DEST" -----------------------------
kind noroute -
dir_noroute() { _sd=$HOSTSTATE/noroute/${1%/*}_${1##*/}; }
save_noroute() { run ip -4 route show exact "$1"; }
set_noroute() {
    local n=0
    while has_dest "$1" && [ $n -lt 8 ]; do run ip route del "$1"; ip_changed; n=$((n + 1)); done
}
restore_noroute() { restore_routes "$1"; }
preflight_noroute() { dir_noroute "$1"; need_dir; }
present_noroute() { holds noroute "$1" && ! has_dest "$1"; }
add_noroute() { hold noroute "$@"; }
del_noroute() { release noroute "$@"; }

# --- fwopen: the how-to's "stop the firewall": every table the host has, emptied, every ------
# policy ACCEPT; the whole ruleset saved and restored: "fwopen"
kind fwopen -
dir_fwopen() { _sd=$HOSTSTATE/fw/open; }
save_fwopen() { run iptables-save; }
set_fwopen() {
    local all='' open='' l=''
    all=$(iptables-save) || die "iptables-save failed"
    IFS=$NL
    for l in $all; do
        IFS=$WS
        # shellcheck disable=SC2086 # split into words on purpose
        set -- $l
        case "${1-}" in
            "*"*) open=$open$1$NL ;;
            :*) [ "${2-}" = - ] || open="$open$1 ACCEPT [0:0]$NL" ;;
            COMMIT) open=${open}COMMIT$NL ;;
        esac
    done
    IFS=$WS
    run iptables-restore -w "$IPT_WAIT" <<EOF
$open
EOF
    tables_changed
}
restore_fwopen() {
    local e=''
    e=$(iptables-restore -w "$IPT_WAIT" "$1/orig" 2>&1) || _bad="$_bad; the firewall saved in $1/orig ($e)"
    tables_changed
}
preflight_fwopen() { need_xtables filter; dir_fwopen; need_dir; }
present_fwopen() { holds fwopen && fw_is_open; }
fw_is_open() {   # every policy ACCEPT, no rule but a pair's (a reload or reboot brings the firewall back)
    local t='' line=''
    for t in filter nat mangle raw security; do
        load_table "$t"
        IFS=$NL
        for line in $_s; do
            IFS=$WS
            case "$line" in
                ":"*" - "* | ":"*" ACCEPT "*) ;;
                ":"*) return 1 ;;
                "-A TP-"* | *' --comment "tunnelpair:'*) ;;
                "-A "*) return 1 ;;
            esac
        done
        IFS=$WS
    done
}
add_fwopen() { hold fwopen; }
del_fwopen() { release fwopen; }
