# --- the pair's state: $STATE (manifest, journal, chains/, undo/), the lock, the rollback ----
COMMITTED=0; FRESH=0; DIED=0; STEP=; OBJ=; UNDO_FAILED=0

# Each change first writes its undo here, one line: "add KIND ARGS" or "del KIND ARGS" (the
# kind's add_/del_ function, see objects.sh), "chainrestore TABLE CHAIN FILE", "chainfiles
# CHAIN" (objects.sh) or "reheld KIND DIR" (hostwide.sh).
journal() { printf '%s\n' "$*" >>"$STATE/journal"; }

# --- the files a run compares, read at once ----------------------------------------------------
# A run reads its manifest, and present_K compares the files of some kinds (each desired
# chain's .rules and .live, the units and the stored script) with the text it would write
# them as: a dozen files in an idle run, a `cat` each cost more than all the rest. One `head`
# reads every one of them that exists, when the first is wanted (under the lock), into FILES:
# head puts "==> PATH <==" before each file (for two files or more: /dev/null goes last). The
# manifest goes first, the one file whose text is taken out (at the front, cheaply: dash's
# ${x#...} matches its pattern against each prefix up to the one it removes); the others are
# only compared, by one `case` each. A desired object's files are written only by its own
# add_, after its present_ has compared them, so what was read holds for the rest of the run;
# a stale object's removal and the rollback change files of their own (files_changed), and
# the next file wanted reads them all again.
FILES_READ=0; FILES=; MANIFEST=
load_files() {
    [ "$FILES_READ" = 0 ] || return 0
    local l='' k='' p=''
    _f=$STATE/manifest
    IFS=$NL
    for l in $DESIRED; do
        IFS=$WS
        # shellcheck disable=SC2086 # kind args...
        set -- $l
        k=$1; shift
        if command -v "files_$k" >/dev/null; then "files_$k" "$@"; fi
    done
    set --
    IFS=$NL
    for p in $_f; do IFS=$WS; [ ! -e "$p" ] || set -- "$@" "$p"; done
    IFS=$WS
    FILES=; MANIFEST=; FILES_READ=1
    [ $# -gt 0 ] || return 0
    if [ $# = 1 ] && [ "$1" = "$STATE/manifest" ] && read_text "$1" 2>/dev/null; then
        # the manifest alone (a destroy, a compute node's run): read by the shell, put as
        # head puts it (read_text: a process costs more)
        FILES="$NL==> $1 <==$NL$_t$NL==> /dev/null <=="
    else
        # (a file gone since, or unreadable, has no header: it reads as missing, as with slurp)
        FILES=$NL$(head -n 999999999 "$@" /dev/null 2>/dev/null) || true
    fi
    case "$FILES" in
        "$NL==> $STATE/manifest <==$NL"*)
            _t=${FILES#"$NL==> $STATE/manifest <==$NL"}; _t=${_t%%"$NL==> "*}
            one_newline; MANIFEST=$_t ;;   # (as slurp reads it)
    esac
}
files_changed() { FILES_READ=0; }
file_is() {   # path text: the file (one a files_K lists) holds exactly text, each line ending in a newline as the runtime writes it
    load_files
    case "$FILES" in *"$NL==> $1 <==$NL$2$NL==> "*) return 0 ;; esac
    return 1
}

manifest_read() {   # -> $_c: the manifest, "own|had LINE" a line, oldest first; $_rev: newest first
    local e=''
    load_files; _c=$MANIFEST
    _rev=; IFS=$NL
    for e in $_c; do IFS=$WS; case "$e" in *" "*) _rev=$e$NL$_rev ;; esac; done   # (one word: a damaged line)
    IFS=$WS
}

# Removes the empty state directories from each DIR up to and including $ROOT, with one
# rmdir (a program costs more than all its calls): each DIR's chain up to $ROOT in turn, so
# that the last chain through a shared parent tries it after everything below it (rmdir goes
# on past a directory that is not empty; the parents of that one then fail too, and stay).
prune() {   # dir...
    local d='' c=''
    for d in "$@"; do
        while [ "${d#"$ROOT"}" != "$d" ]; do
            c="$c$d$NL"
            [ "$d" = "$ROOT" ] && break
            d=${d%/*}
        done
    done
    [ -n "$c" ] || return 0
    IFS=$NL
    # shellcheck disable=SC2086 # a path a line
    set -- $c
    IFS=$WS
    rmdir "$@" 2>/dev/null || true
}
tidy() {   # the journal is emptied (without a process), the undo copies of chains go
    : >"$STATE/journal"
    [ ! -d "$STATE/undo" ] || rm -rf "$STATE/undo"
}

# One mkdir for the directories a run may need: its state, and the directory of each host-wide
# value it is to hold that no pair holds yet (MADE: the preflight of its kind names it, see
# need_dir). A run that fails prunes those it left empty.
MADE=
make_dirs() {
    local d=''
    set -- "$STATE/chains"
    for d in $MADE; do set -- "$@" "$d/holders"; done
    if [ $# -gt 1 ] || [ ! -d "$STATE/chains" ]; then mkdir -p "$@"; fi
}
prune_made() {   # [dir...]: the directories of host-wide values this run made and left empty, and dirs, pruned
    local d=''
    for d in $MADE; do [ -e "$d/orig" ] || set -- "$@" "$d/holders"; done
    prune "$@"
}

# The undo steps go newest first, in groups that share a batch: a run of ip steps is queued
# and sent with every command tried, a run of iptables steps is one restore per family (both
# tried, IPv6's first), any other step goes alone. Each group runs in a subshell: what fails
# in it (a die included) is warned about, and the rest of the rollback still goes.
rollback() {
    [ -s "$STATE/journal" ] || return 0
    local undo='' u='' group='' gb=''
    slurp "$STATE/journal"; reversed "$_c"; undo=$_rev
    : >"$STATE/journal"   # undo steps journal into a scratch file that is thrown away
    # what a failed run had queued and not sent (or sent and was refused) is never sent
    QUEUED_TABLES=; QUEUED_CHAINS=; IPQ_CMDS=; IPQ_OBJS=
    IFS=$NL
    for u in $undo; do
        IFS=$WS
        undo_batch "$u"
        if [ -n "$group" ] && [ "$_b" != "$gb" ]; then undo_group "$gb" "$group"; group=; fi
        if [ -n "$_b" ]; then group="$group$u$NL"; gb=$_b; else undo_group "" "$u"; fi
    done
    IFS=$WS
    [ -z "$group" ] || undo_group "$gb" "$group"
    tidy
    ip_changed; tables_changed; files_changed
}
undo_batch() {   # undo step -> $_b: ip, ipt, or empty (at once)
    # shellcheck disable=SC2086 # op kind args...
    set -- $1
    _b=
    case "$1 ${2-}" in
        "del newlink" | "add down") _b=ip ;;
        "add "* | "del "*) if known "$2"; then eval "_b=\${BATCH_$2-}"; fi ;;
    esac
}
undo_group() {   # batch steps: the steps (newest first) in one subshell, warned about when they fail
    (
        # shellcheck disable=SC2030 # OBJ, what ipq records a step for, is this subshell's own
        local batch="$1" steps="$2" u='' op='' fn='' files4='' files6='' OBJ=''
        ip_changed; tables_changed   # (an earlier group changed the host in a subshell)
        IFS=$NL
        for u in $steps; do
            IFS=$WS; OBJ=$u
            # shellcheck disable=SC2086 # op kind args...
            set -- $u; op=$1; shift
            case "$op $1" in
                "del chain")
                    queue_del_chain "$2" "$3"
                    case "$2" in
                        *6) files6="$files6 $STATE/chains/$3.rules $STATE/chains/$3.live" ;;
                        *) files4="$files4 $STATE/chains/$3.rules $STATE/chains/$3.live" ;;
                    esac ;;
                "del jump") shift; queue_del_jump "$@" ;;
                "chainrestore "*) chain_restore "$@" ;;
                "chainfiles "*) chain_files "$@" ;;
                "reheld "*) reheld "$@" ;;
                *) fn=${op}_$1; shift; "$fn" "$@" ;;
            esac
        done
        IFS=$WS
        case "$batch" in
            ip) flush_ip_every || { IFS=$NL; for u in $steps; do IFS=$WS; ! ip_failure "$u" || warn "undo of '$u' failed: $_v"; done; IFS=$WS; exit 1; } ;;
            ipt)
                # both families' restores tried: one refused (the xtables lock still held)
                # must not leave the other's chains and jumps, unrecorded after a first run
                flush_queue_every || true
                # (the files of a chain still there stay with it)
                [ -z "$_xt6" ] || files6=
                [ -z "$_xt4" ] || files4=
                # shellcheck disable=SC2086 # file names without blanks
                [ -z "$files4$files6" ] || rm -f $files4 $files6
                [ -z "$_xt6$_xt4" ] || die "$_xt6${_xt6:+${_xt4:+; }}$_xt4" ;;
            *) flush_queue; flush_ip ;;
        esac
    ) || { warn "undo of '$(printf '%s' "$2" | tr '\n' ';')' failed"; UNDO_FAILED=1; }
}

finish() {
    local rc=$?
    IFS=$WS   # (a signal may come inside a loop's split)
    trap - EXIT
    trap '' HUP INT TERM PIPE   # a cut connection must not stop the rollback
    set +e
    # a command that failed under set -e said why, but not where
    # shellcheck disable=SC2031 # (OBJ: this run's step; undo_group's subshells have their own)
    [ "$rc" -eq 0 ] || [ "$DIED" = 1 ] || warn "step ${STEP:-preflight} (${OBJ:-}) failed with exit $rc"
    if [ "$rc" -ne 0 ] && [ "$COMMITTED" = 0 ] && [ -d "$STATE" ]; then
        STEP=
        rollback
        if [ "$FRESH" = 1 ]; then rm -rf "$STATE"; prune_made "${STATE%/*}"; else prune_made; fi
        # (an undo refused said so above: what it names is still on the host)
        if [ "$UNDO_FAILED" = 0 ]; then warn "nothing was changed: the host is as it was before this run"
        else warn "this run's changes were undone but for what is named above, which is still on the host"; fi
    fi
    exit "$rc"
}

lock() {   # one tunnelpair run at a time per host; /var/lib is locked, not written
    command -v flock >/dev/null 2>&1 || die "flock (util-linux) is required"
    exec 9</var/lib
    flock -w "$LOCK_WAIT" 9 || die "another tunnelpair run held the lock for ${LOCK_WAIT}s"
}
