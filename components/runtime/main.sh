# --- entry points: preflight, apply, remove ----------------------------------------------------
main() {   # [follow-firewalld]: the apply script's arguments (pulumi up and the units pass none)
    case "${1-}" in
        '') apply ;;
        follow-firewalld) follow_firewalld ;;
        *) die "unknown argument '$1': none converges, follow-firewalld follows firewalld's reloads" ;;
    esac
}
known() { case " $KINDS " in *" $1 "*) return 0 ;; esac; return 1; }
obj() {   # verb kind args...: the kind's function for the verb, e.g. present_addr ARGS
    known "$2" || die "unknown object kind '$2'"
    local fn="$1_$2"
    shift 2
    "$fn" "$@"
}
# Only kinds with ADOPT_<kind> can be there before the pair is; they then stay when the pair goes.
adoptable() { eval "[ -n \"\${ADOPT_$1-}\" ]"; }   # kind (known)

preflight() {   # nothing has changed yet: refuse what cannot work
    command -v ip >/dev/null 2>&1 || die "'ip' is required"
    mtu_auto_peers
    local l=''
    IFS=$NL
    for l in $DESIRED; do
        IFS=$WS
        # shellcheck disable=SC2086 # kind args...
        obj preflight $l
    done
    IFS=$WS
    # Loading ipip is the one change never undone: unloading is unsafe while any ipip
    # device exists anywhere, and the kernel then keeps a tunl0 in every namespace.
    if [ "$NEED_IPIP" = 1 ] && [ ! -d /sys/module/ipip ]; then
        modprobe ipip 2>/dev/null || [ -d /sys/module/ipip ] || die "this kernel cannot do ipip (modprobe ipip failed)"
    fi
}

apply() {
    from_file
    lock
    still_current
    trap finish EXIT
    trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 141' PIPE; trap 'exit 143' TERM
    preflight
    [ -d "$STATE" ] || FRESH=1
    make_dirs
    rollback   # a journal left here: an earlier run died before it could undo itself
    if [ "$FRESH" = 0 ] && [ ! -e "$STATE/manifest" ]; then FRESH=1; fi
    local old='' new='' entry='' own='' line='' batch='' added=0 removed=0 kept=0
    manifest_read; old=$_c
    # Stale objects go first, newest first: they may hold names or addresses the new need.
    IFS=$NL
    for entry in $_rev; do
        IFS=$WS; own=${entry%% *}; line=${entry#* }
        member "$line" "$DESIRED" && continue
        [ "$own" = own ] || continue
        OBJ=$line; STEP=remove
        batch=
        if known "${line%% *}"; then eval "batch=\${BATCH_${line%% *}-}"; fi
        [ "$batch" = ip ] || flush_ip
        journal "add $line"
        # shellcheck disable=SC2086
        obj del $line
        say "- $line"
        removed=$((removed + 1))
    done
    IFS=$WS
    flush_ip   # the stale objects are gone before the desired ones are looked at
    [ "$removed" = 0 ] || files_changed   # (a removal takes its object's files: read them all again)
    STEP=0; IFS=$NL
    for line in $DESIRED; do
        IFS=$WS
        STEP=$((STEP + 1)); OBJ=$line
        # shellcheck disable=SC2086
        if obj present $line; then
            kept=$((kept + 1))
            if member "own $line" "$old"; then new="${new}own $line$NL"
            elif member "had $line" "$old" || adoptable "${line%% *}"; then
                member "had $line" "$old" || say "= $line (already there: it stays after destroy)"
                new="${new}had $line$NL"
            else new="${new}own $line$NL"; fi
            continue
        fi
        # the batches this change does not join go to the kernel before it
        eval "batch=\${BATCH_${line%% *}-}"
        [ "$batch" = ipt ] || flush_queue
        [ "$batch" = ip ] || flush_ip
        # shellcheck disable=SC2086
        obj add $line
        added=$((added + 1))
        # the host's own object, gone since (a reboot before its own config ran, the admin):
        # put back for the pair, and still the host's: destroy leaves it
        if member "had $line" "$old"; then new="${new}had $line$NL"; say "+ $line (the host's: it stays after destroy)"; continue; fi
        new="${new}own $line$NL"
        say "+ $line"
    done
    IFS=$WS
    flush_queue
    flush_ip
    # said before the commit: a connection cut by now fails this write, and the run rolls back
    say "applied: $added added, $removed removed, $kept unchanged"
    # endpoint b's apply at `pulumi up` ends with the pair's probe (render.ts): a tunnel that
    # does not carry its traffic is undone like any failed step (the units' runs have no probe)
    if command -v verify_pair >/dev/null; then
        STEP=
        verify_pair || die "the tunnel did not pass its verification (above)"
    fi
    # (the same list as before, in an idle run: nothing to write, no mv to start)
    if [ "$new" != "$old" ] || [ ! -e "$STATE/manifest" ]; then
        printf '%s' "$new" >"$STATE/manifest.new"
        mv "$STATE/manifest.new" "$STATE/manifest"
    fi
    COMMITTED=1
    tidy
}

# remove: what is there of an object of a batched kind goes into its batch (read from the
# host as this shell has it): one restore per family then removes the firewall's (each family's
# all or none, both tried); one ip -force -batch the devices', addresses' and routes', each told
# apart. RM_BATCH and RM_IP hold the manifest lines in each batch (newest first), RM_LEFT those
# that stay listed for the next destroy (oldest first), RM_FAILED their number.
RM_BATCH=; RM_IP=; RM_LEFT=; RM_FAILED=0
left_listed() { RM_LEFT="$1$NL$RM_LEFT"; RM_FAILED=$((RM_FAILED + 1)); }   # manifest line: kept, counted
remove_queued() {   # the iptables batch; a family's refusal keeps its objects listed, the other's go
    [ -n "$RM_BATCH" ] || return 0
    local o='' e=''
    flush_queue_every || true
    [ -z "$_xt6" ] || warn "removing the IPv6 firewall rules failed: $_xt6"
    [ -z "$_xt4" ] || warn "removing the IPv4 firewall rules failed: $_xt4"
    IFS=$NL
    for o in $RM_BATCH; do
        IFS=$WS
        # shellcheck disable=SC2086 # own kind table ...: the table says the family
        set -- $o
        case "$3" in *6) e=$_xt6 ;; *) e=$_xt4 ;; esac
        if [ -n "$e" ]; then left_listed "$o"; else say "- ${o#* }"; fi
    done
    IFS=$WS; RM_BATCH=
}
remove_queued_ip() {   # the ip batch, every command tried; an object whose command failed stays listed
    [ -n "$RM_IP" ] || return 0
    local o=''
    flush_ip_every || true
    IFS=$NL
    for o in $RM_IP; do
        IFS=$WS
        if ip_failure "${o#* }"; then
            warn "removing ${o#* } failed: $_v"
            left_listed "$o"
        else
            say "- ${o#* }"
        fi
    done
    IFS=$WS; RM_IP=
}

remove() {
    lock
    if [ ! -d "$STATE" ]; then say "nothing to remove"; prune "${STATE%/*}"; return 0; fi
    rollback
    local entry='' own='' line='' batch='' e='' k='' parents='' gone=''
    REMOVING=1
    manifest_read
    IFS=$NL
    for entry in $_rev; do
        IFS=$WS; own=${entry%% *}; line=${entry#* }
        if [ "$own" != own ]; then say "= $line (was there before us: left in place)"; continue; fi
        batch=
        if known "${line%% *}"; then eval "batch=\${BATCH_${line%% *}-}"; fi
        [ "$batch" = ip ] || remove_queued_ip
        [ "$batch" = ipt ] || remove_queued
        OBJ=$line
        if [ "$batch" = ipt ]; then
            # shellcheck disable=SC2086
            obj queue_del $line
            RM_BATCH="$RM_BATCH$own $line$NL"
            continue
        fi
        if [ "$batch" = ip ]; then
            # shellcheck disable=SC2086
            obj del $line
            RM_IP="$RM_IP$own $line$NL"
            continue
        fi
        # (in a subshell, its messages kept: a failure is reported, and the loop goes on)
        # shellcheck disable=SC2086
        if e=$(obj del $line 2>&1); then
            [ -z "$e" ] || printf '%s\n' "$e" >&2
            say "- $line"
        else
            warn "removing $line failed: $e"
            left_listed "$own $line"
        fi
        # the del ran in a subshell: forget here what it may have changed
        ip_changed; tables_changed
        # a host-wide value: what release left for the end (it deletes its directory, or this
        # pair's holder file when another pair holds the value, after trying the restore,
        # whether or not that worked), and the directory's parents, pruned at the end
        # shellcheck disable=SC2086 # kind args...
        if command -v "dir_${line%% *}" >/dev/null; then
            set -- $line; k=$1; shift; "dir_$k" "$@"
            if others_hold "$_sd"; then gone="$gone$_sd/holders/$HOLDER$NL"; else gone="$gone$_sd$NL"; fi
            parents="$parents${_sd%/*}$NL"
        fi
    done
    IFS=$WS
    remove_queued_ip
    remove_queued
    IFS=$NL
    # shellcheck disable=SC2086 # a path a line
    set -- $gone
    IFS=$WS
    if [ "$RM_FAILED" -gt 0 ]; then printf '%s' "$RM_LEFT" >"$STATE/manifest"; else set -- "$STATE" "$@"; fi
    # the pair's state (unless objects stay listed) and what its host-wide values left, one rm
    [ $# = 0 ] || rm -rf "$@"
    IFS=$NL
    # shellcheck disable=SC2086 # a path a line
    set -- $parents
    IFS=$WS
    if [ "$RM_FAILED" -gt 0 ]; then
        prune "$@"
        die "$RM_FAILED objects could not be removed; they stay listed in $STATE/manifest for the next destroy"
    fi
    prune "$@" "${STATE%/*}"
    say "removed"
}
