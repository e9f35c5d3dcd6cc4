# tunnelpair runtime: the constant part of every script, in parts that render.ts puts
# together in this order: base.sh (globals, helpers, the host's live state, the two batches),
# state.sh (the pair's state directory, journal, rollback, lock), objects.sh (the objects a
# pair owns, one section per kind), hostwide.sh (the reference-counted host-wide values and
# their kinds), units.sh (the systemd units), modes.sh (the tunnel modes beyond ipip: only in
# the scripts of pairs of those modes), main.sh (preflight, apply, remove). Each function is
# defined once, in one part. render.ts puts the pair's values (HOST TAG STACK PAIR ROOT STATE
# DESIRED) and chain_rules() in front of them, and a call to main or remove after them.
# POSIX sh and `local`: dash, bash, busybox ash.
#
# Both families: an object's address says its family (IPv6's hold a ":"), and only that
# family's state is read: IPv4's with `ip -4` (load_ip), IPv6's with `ip -6` (load_ip6); the
# tables filter6 and mangle6 are ip6tables' filter and mangle, read with ip6tables-save and
# written with ip6tables and ip6tables-restore. A pair with no IPv6 object (every ipip and gre
# pair) never starts an IPv6 program.
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
# read once per run into variables (the files a run compares all with one `head`, load_files
# in state.sh; the stored script with one `cat`; a small file by read_text, below), and text
# is walked line by line without `read`, split once by the shell:
#     IFS=$NL; for l in $text; do IFS=$WS; ...; done; IFS=$WS
# (the body first puts IFS back, so whatever it calls, and however it leaves the loop, splits
# words as usual; empty lines are skipped; set -f: nothing is globbed).
# For the same reason a helper that returns a value sets a variable instead of printing it
# (a $(...) forks, and a fork costs ~10 ms on a small router). These variables, named with a
# leading "_", are results and nothing else: read them right after the call.
#     _v      read_first, sysctl_read, dev_alias: the value read
#     _c      slurp: a file's text                 _rev    reversed: its lines, last first
#     _t      read_text: a file's text, exactly
#     _s      load_table: a table's lines          _live   chain_live: a chain's rules
#     _k      route_key: a route's key             _tp     tunnel_params: "local remote ttl"
#     _mtu_v  resolve_mtu: the MTU to set          _rules  chain_rules (render.ts): its rules
#     _sd     dir_<kind> (hostwide.sh)             _ra     route_args: `ip route add` args
#     _comp   sysctl_companions                    _bad    restore_<kind>: what failed, appended
#     _ipfail flush_ip_every: the failed commands  _b      undo_batch: an undo step's batch
#     _f      files_<kind>: paths, appended
#     _x4 _x6 xt_input: each family's restore input
#     _xt4 _xt6 flush_queue_every: what each family's restore said when it failed
# A function's own temporaries are `local`, named without the "_": local is dynamic in every
# one of these shells, and a local named like a result would swallow the result of a helper
# the function calls.

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
run() {   # runs a command (stdin and stdout its own); its failure fails the step with its message
    local e=''
    { e=$("$@" 2>&1 >&3); } 3>&1 || die "$* failed: $e"
}

ipt() {   # [-t TABLE] args: TABLE filter6 or mangle6 goes to ip6tables as filter or mangle
    if [ "${1-}" = -t ]; then
        case "$2" in
            *6) local t="${2%6}"; shift 2; ip6tables -w "$IPT_WAIT" -t "$t" "$@"; return ;;
        esac
    fi
    iptables -w "$IPT_WAIT" "$@"
}
# dash's read returns 1 on /proc and /sys files although it has read the value: trust the value.
read_first() { _v=; read -r _v <"$1" || [ -n "$_v" ]; }   # -> $_v
sysctl_read() { read_first "/proc/sys/$1"; }   # -> $_v
sysctl_write() { printf '%s\n' "$2" >"/proc/sys/$1"; }
reversed() {   # lines -> $_rev, last first
    local l=''
    _rev=; IFS=$NL
    for l in $1; do IFS=$WS; _rev=$l$NL$_rev; done
    IFS=$WS
}
member() { case "$NL$2$NL" in *"$NL$1$NL"*) return 0 ;; esac; return 1; }
# A small file's text, read by the shell: a program costs ~60 ms on a small router (UML: ~57
# ms), the shell's read ~5 ms a kilobyte (it reads a byte at a time, so a long file goes to a
# program: `head` in load_files, `cat` for the stored script).
read_text() {   # file -> $_t: its text exactly (a last line without its newline stays so)
    local l=''
    _t=
    while IFS= read -r l; do _t=$_t$l$NL; done <"$1" || return 1
    _t=$_t$l
}
# $_t as $(...) and a newline give it: each line ending in one newline, trailing empty lines dropped
one_newline() {
    while :; do case "$_t" in *"$NL") _t=${_t%"$NL"} ;; *) break ;; esac; done
    _t=${_t:+$_t$NL}
}
# a file -> $_c, as one_newline puts it
slurp() {
    [ -e "$1" ] && read_text "$1" 2>/dev/null || return 1
    one_newline; _c=$_t
}

# --- live state, read once, dropped after a change --------------------------------------
# One `ip` per family reads, one per line: first the route to each peer of that family whose
# tunnel MTU is "auto" (into PEER_ROUTES, "PEER ..."; a peer without a route has no line: -force
# reads on), then the addresses (into ADDRS: the lines "N: DEV ...") and the routes (into
# ROUTES: the lines after the first address; a route never begins with a number and ": "). Its
# complaints (into IP_ERRORS) are told apart by their words; only the peers' may fail. IPv4's
# (load_ip, `ip -4`) into those names, IPv6's (load_ip6, `ip -6`) into the same names with a 6:
# each only when something of its family is asked about.
AUTO_PEERS=; IP_READ=0; PEER_ROUTES=; ADDRS=; ROUTES=; IP_ERRORS=
IP6_READ=0; PEER_ROUTES6=; ADDRS6=; ROUTES6=; IP_ERRORS6=
load_ip() { [ "$IP_READ" = 0 ] || return 0; ip_read 4 ""; IP_READ=1; }
load_ip6() { [ "$IP6_READ" = 0 ] || return 0; ip_read 6 6; IP6_READ=1; }
ip_read() {   # family suffix: into PEER_ROUTES<suffix>, ADDRS<suffix>, ROUTES<suffix>, IP_ERRORS<suffix>
    local q='' n=0 p='' all='' seen=0 l='' peers='' addrs='' routes='' errors=''
    for p in $AUTO_PEERS; do
        case "$p" in *:*) [ "$1" = 6 ] || continue ;; *) [ "$1" = 4 ] || continue ;; esac
        q="${q}route get $p$NL"; n=$((n + 1))
    done
    all=$(ip -"$1" -o -force -batch - 2>&1 <<EOF
${q}addr show
route show table main
EOF
    ) || true
    IFS=$NL
    for l in $all; do
        IFS=$WS
        case "$l" in
            "Command failed -:"*)
                [ "${l##*:}" -le "$n" ] || die "ip${2:+ -6} addr show / ip${2:+ -6} route show failed: ${errors%"$NL"}"
                continue ;;
            "RTNETLINK answers: "* | "Error: "*) errors=$errors$l$NL; continue ;;
        esac
        case "${l%%": "*}" in
            *[!0-9]* | "")
                if [ "$seen" = 1 ]; then routes=$routes$l$NL
                else   # `ip route get` puts a type first for some (local, broadcast ...)
                    case "$l" in local\ * | broadcast\ * | multicast\ * | anycast\ * | unicast\ *) l=${l#* } ;; esac
                    peers=$peers$l$NL
                fi ;;
            *) seen=1; addrs=$addrs$l$NL ;;
        esac
    done
    IFS=$WS
    eval "PEER_ROUTES$2=\$peers; ADDRS$2=\$addrs; ROUTES$2=\$routes; IP_ERRORS$2=\$errors"
}
ip_changed() { IP_READ=0; IP6_READ=0; }
# Every table the kernel has, in one *-save per family (read only when one of its tables is
# asked for), kept per table in SAVE_<table> (SAVE_filter6, SAVE_mangle6: ip6tables') until a
# change. Without -t it reads only the tables that exist: reading one by name makes the kernel
# create it, and it stays (as an empty table). A table the kernel does not have reads empty.
TABLES_READ=0; TABLES6_READ=0; _s=
xt_read() {   # program suffix: every table the program prints, into SAVE_<table><suffix>
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
load_table() {   # table -> $_s
    case "$1" in
        *6) if [ "$TABLES6_READ" = 0 ]; then xt_read ip6tables-save 6; TABLES6_READ=1; fi ;;
        *) if [ "$TABLES_READ" = 0 ]; then xt_read iptables-save ""; TABLES_READ=1; fi ;;
    esac
    eval "_s=\$SAVE_$1"
}
tables_changed() { TABLES_READ=0; TABLES6_READ=0; }

has_local_address() {   # address: configured on any interface (in the addresses of its family)
    local want="$1" addrs='' l=''
    case "$1" in *:*) load_ip6; addrs=$ADDRS6 ;; *) load_ip; addrs=$ADDRS ;; esac
    IFS=$NL
    for l in $addrs; do
        IFS=$WS
        # shellcheck disable=SC2086 # split into words on purpose
        set -- $l
        if [ $# -ge 4 ] && [ "${4%/*}" = "$want" ]; then return 0; fi
    done
    IFS=$WS; return 1
}
route_key() {   # -> $_k: a route's destination as ip prints it
    # (IPv6's first: an IPv6 /32, a site's allocation, keeps its prefix; only /128 is a host's)
    case "$1" in 0.0.0.0/0 | ::/0) _k=default ;; *:*/128) _k=${1%/128} ;; *:*) _k=$1 ;; */32) _k=${1%/32} ;; *) _k=$1 ;; esac
}
has_route() {   # dest dev|via X: in the routes of the destination's family
    local routes=''
    case "$1" in *:*) load_ip6; routes=$ROUTES6 ;; *) load_ip; routes=$ROUTES ;; esac
    route_key "$1"
    case "$NL$routes" in *"$NL$_k $2 $3$NL"* | *"$NL$_k $2 $3 "*) return 0 ;; esac
    return 1
}
has_default() { load_ip; case "$NL$ROUTES" in *"${NL}default "*) return 0 ;; esac; return 1; }
has_dest() { load_ip; route_key "$1"; case "$NL$ROUTES" in *"$NL$_k "*) return 0 ;; esac; return 1; }
chain_exists() { load_table "$1"; case "$NL$_s" in *"$NL:$2 "*) return 0 ;; esac; return 1; }
chain_live() {  # table chain -> $_live: its rules as iptables-save prints them
    load_table "$1"
    local line=''
    _live=; IFS=$NL
    for line in $_s; do IFS=$WS; case "$line" in "-A $2 "*) _live=$_live$line$NL ;; esac; done
    IFS=$WS
}

# --- the two batches -------------------------------------------------------------------------
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
    local objs="$IPQ_OBJS" cmds="$IPQ_CMDS" e='' n='' i=0 o=''
    IPQ_OBJS=; IPQ_CMDS=; ip_changed
    e=$(ip -batch - 2>&1 >/dev/null <<EOF
$cmds
EOF
    ) && return 0
    # "Command failed -:N": the Nth queued command, and the object it was for
    n=${e##*:}; IFS=$NL
    for o in $objs; do IFS=$WS; i=$((i + 1)); if [ "$i" = "$n" ]; then STEP=${o%% *}; OBJ=${o#* }; fi; done
    IFS=$WS
    die "ip failed: $e"
}
# The queue with every command tried (ip -force -batch), for removals and undo steps: what
# fails is told, not fatal. -> $_ipfail: "OBJECT<TAB>ip's words" a line, for each command that
# failed (every object, with all ip said, when ip named no command).
TAB='	'
flush_ip_every() {
    _ipfail=
    [ -n "$IPQ_OBJS" ] || return 0
    local objs="$IPQ_OBJS" cmds="$IPQ_CMDS" e='' l='' msg='' n='' i=0 o=''
    IPQ_OBJS=; IPQ_CMDS=; ip_changed
    e=$(ip -force -batch - 2>&1 >/dev/null <<EOF
$cmds
EOF
    ) && return 0
    IFS=$NL
    for l in $e; do
        case "$l" in
            "Command failed -:"*)
                n=${l##*:}; i=0
                for o in $objs; do i=$((i + 1)); [ "$i" != "$n" ] || _ipfail="$_ipfail${o#* }$TAB${msg:-ip failed}$NL"; done
                msg= ;;
            *) msg=${msg:+$msg; }$l ;;
        esac
    done
    if [ -z "$_ipfail" ]; then for o in $objs; do _ipfail="$_ipfail${o#* }$TAB$e$NL"; done; fi
    IFS=$WS
    return 1
}
ip_failure() {   # object -> $_v: what ip said when its command failed (flush_ip_every); 1: it did not fail
    local f=''
    _v=; IFS=$NL
    for f in $_ipfail; do IFS=$WS; [ "${f%%"$TAB"*}" != "$1" ] || _v=${_v:+$_v; }${f#*"$TAB"}; done
    IFS=$WS; [ -n "$_v" ]
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
xt_input() {   # the queued tables -> $_x4, $_x6: each family's restore input (empty: none of its tables)
    local t=''
    _x4=; _x6=
    for t in $QUEUED_TABLES; do
        case "$t" in
            *6) eval "_x6=\$_x6'*'\${t%6}\$NL\$PENDING_${t}_decl\$PENDING_${t}_rules"; _x6=${_x6}COMMIT$NL ;;
            *) eval "_x4=\$_x4'*'\$t\$NL\$PENDING_${t}_decl\$PENDING_${t}_rules"; _x4=${_x4}COMMIT$NL ;;
        esac
    done
}
flush_queue() {   # each family's tables in one restore of its own program
    [ -n "$QUEUED_TABLES" ] || return 0
    local q=''
    xt_input
    # (each table commits at its COMMIT, IPv4's first: if a later one is refused, the rollback
    # undoes the earlier, whose undo is journaled like the rest)
    if [ -n "$_x4" ]; then
        run iptables-restore -w "$IPT_WAIT" --noflush <<EOF
$_x4
EOF
    fi
    if [ -n "$_x6" ]; then
        run ip6tables-restore -w "$IPT_WAIT" --noflush <<EOF
$_x6
EOF
    fi
    tables_changed
    for q in $QUEUED_CHAINS; do chain_live "${q%%:*}" "${q#*:}"; printf '%s' "$_live" >"$STATE/chains/${q#*:}.live"; done
    QUEUED_TABLES=; QUEUED_CHAINS=
}
# The queue with both families' restores tried, for removals and undo steps (which queue no
# chain to read back): a family's refusal is told, not fatal, and the other's restore still
# goes. IPv6's first, the reverse of flush_queue's commit order, as an undo goes newest first.
# -> $_xt6, $_xt4: what each family's restore said when it failed (empty: it did not fail, or
# had nothing to do); 1: one failed.
flush_queue_every() {
    _xt4=; _xt6=
    [ -n "$QUEUED_TABLES" ] || return 0
    local e=''
    xt_input
    QUEUED_TABLES=; QUEUED_CHAINS=
    if [ -n "$_x6" ]; then
        e=$(ip6tables-restore -w "$IPT_WAIT" --noflush 2>&1 >/dev/null <<EOF
$_x6
EOF
        ) || _xt6="ip6tables-restore -w $IPT_WAIT --noflush failed: $e"
    fi
    if [ -n "$_x4" ]; then
        e=$(iptables-restore -w "$IPT_WAIT" --noflush 2>&1 >/dev/null <<EOF
$_x4
EOF
        ) || _xt4="iptables-restore -w $IPT_WAIT --noflush failed: $e"
    fi
    tables_changed
    [ -z "$_xt6$_xt4" ]
}
