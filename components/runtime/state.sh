# --- the pair's state: $STATE (manifest, journal, chains/, undo/), the lock, the rollback ----
COMMITTED=0; FRESH=0; DIED=0; STEP=; OBJ=

# Each change first writes its undo here, one line: "add KIND ARGS" or "del KIND ARGS" (the
# kind's add_/del_ function, see objects.sh), or "chainrestore TABLE CHAIN FILE".
journal() { printf '%s\n' "$*" >>"$STATE/journal"; }

manifest_read() {   # -> $_c: the manifest, "own|had LINE" a line, oldest first; $_rev: newest first
    local e=''
    slurp "$STATE/manifest" || _c=
    _rev=; IFS=$NL
    for e in $_c; do IFS=$WS; case "$e" in *" "*) _rev=$e$NL$_rev ;; esac; done   # (one word: a damaged line)
    IFS=$WS
}

prune() {   # removes empty state directories from $1 up to and including $ROOT
    local d="$1"
    while [ "${d#"$ROOT"}" != "$d" ]; do
        rmdir "$d" 2>/dev/null || return 0
        [ "$d" = "$ROOT" ] && return 0
        d=${d%/*}
    done
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
prune_made() { local d=''; for d in $MADE; do [ -e "$d/orig" ] || prune "$d/holders"; done; }

rollback() {
    [ -s "$STATE/journal" ] || return 0
    local undo='' u=''
    slurp "$STATE/journal"; reversed "$_c"; undo=$_rev
    : >"$STATE/journal"   # undo steps journal into a scratch file that is thrown away
    IFS=$NL
    for u in $undo; do
        IFS=$WS
        # shellcheck disable=SC2086 # op kind args...
        (set -- $u; op=$1; shift
         case "$op" in
             add) fn=add_$1; shift; "$fn" "$@"; flush_queue; flush_ip ;;
             del) fn=del_$1; shift; "$fn" "$@" ;;
             chainrestore) chain_restore "$@" ;;
         esac
        ) || warn "undo of '$u' failed"
    done
    IFS=$WS
    tidy
    ip_changed; tables_changed
}

finish() {
    local rc=$?
    IFS=$WS   # (a signal may come inside a loop's split)
    trap - EXIT
    trap '' HUP INT TERM PIPE   # a cut connection must not stop the rollback
    set +e
    # a command that failed under set -e said why, but not where
    [ "$rc" -eq 0 ] || [ "$DIED" = 1 ] || warn "step ${STEP:-preflight} (${OBJ:-}) failed with exit $rc"
    if [ "$rc" -ne 0 ] && [ "$COMMITTED" = 0 ] && [ -d "$STATE" ]; then
        STEP=
        rollback
        prune_made
        [ "$FRESH" = 1 ] && { rm -rf "$STATE"; prune "${STATE%/*}"; }
        warn "nothing was changed: the host is as it was before this run"
    fi
    exit "$rc"
}

lock() {   # one tunnelpair run at a time per host; /var/lib is locked, not written
    command -v flock >/dev/null 2>&1 || die "flock (util-linux) is required"
    exec 9</var/lib
    flock -w "$LOCK_WAIT" 9 || die "another tunnelpair run held the lock for ${LOCK_WAIT}s"
}
