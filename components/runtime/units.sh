# --- unit: the pair's systemd units and the script they run: "unit NAME" ---------------------
# With persist: boot the pair converges again without the deployer: at boot (NAME.service, a
# oneshot) and, with repair on, every REPAIR seconds (NAME-repair.timer starting
# NAME-repair.service). Both run $STATE/converge: this very script (TP_SCRIPT, render.ts),
# whose apply is the same converge as `pulumi up`'s: same lock, journal, rollback, manifest.
# The texts of the units come from render.ts (UNIT_SERVICE, UNIT_REPAIR_SERVICE,
# UNIT_REPAIR_TIMER, each without its last newline); the [Install] links are made here, as
# `systemctl enable` would make them, and a .wants directory that was missing is made and
# listed in $HOSTSTATE/unit.dirs, so that destroy takes away exactly what came. The list is
# the host's, not the pair's: two pairs on one host link into the same directories, and the
# one that made a directory may be destroyed while the other's link still keeps it.
# Undo: the files as they were before the run are kept in $STATE/undo/unit (unitrestore); a
# unit removed as stale is put back from there too (add_unit finds the copies).
kind unit -
UNIT_DIR=/etc/systemd/system
SYSTEMD=
FROM_FILE=0   # 1: this run is the units' (the script read from $STATE/converge), not the deployer's
# The unit's files, "PATH VARIABLE" a line (the variable holds the text): the converge script,
# the boot service and, with repair, the repair service and its timer. All four are listed
# for the undo (REPAIR=off lists what a former period may have left).
unit_files() {   # name [all] -> $_ul
    _ul="$STATE/converge TP_SCRIPT$NL$UNIT_DIR/$1.service UNIT_SERVICE"
    if [ "${REPAIR:-off}" != off ] || [ -n "${2-}" ]; then
        _ul="$_ul$NL$UNIT_DIR/$1-repair.service UNIT_REPAIR_SERVICE$NL$UNIT_DIR/$1-repair.timer UNIT_REPAIR_TIMER"
        _ul="$_ul$NL$UNIT_DIR/$1-firewalld.service UNIT_FIREWALLD_HOOK"
    fi
}
unit_links() {   # name [all] -> $_ul: "LINK TARGET" a line
    _ul="$UNIT_DIR/multi-user.target.wants/$1.service $UNIT_DIR/$1.service"
    if [ "${REPAIR:-off}" != off ] || [ -n "${2-}" ]; then
        _ul="$_ul$NL$UNIT_DIR/timers.target.wants/$1-repair.timer $UNIT_DIR/$1-repair.timer"
        _ul="$_ul$NL$UNIT_DIR/firewalld.service.wants/$1-firewalld.service $UNIT_DIR/$1-firewalld.service"
    fi
}
write_file() {   # path text: replaced in one rename (a run reading the old file keeps reading it)
    printf '%s\n' "$2" >"$1.tp-new" && mv -f "$1.tp-new" "$1"
}
preflight_unit() {
    # sd_booted(3): systemd runs this host iff /run/systemd/system is a directory
    if [ -d /run/systemd/system ]; then SYSTEMD=1; return 0; fi
    [ -z "${PERSIST_EXPLICIT-}" ] || die "persist: boot needs systemd, which $HOST does not run (no /run/systemd/system); set persist: none"
    say "warning: $HOST does not run systemd: persist falls back to none, and after a reboot the tunnel is gone until the next pulumi up"
}
files_unit() {   # name: the files present_unit compares (unit_files)
    local e=''
    unit_files "$1"
    IFS=$NL
    for e in $_ul; do IFS=$WS; _f="$_f$NL${e% *}"; done
    IFS=$WS
}
present_unit() {
    [ -n "$SYSTEMD" ] || return 0   # nothing to hold on a host without systemd
    local e='' t=''
    unit_files "$1"
    IFS=$NL
    for e in $_ul; do
        IFS=$WS
        eval "t=\$${e##* }"
        file_is "${e% *}" "$t$NL" || return 1
    done
    unit_links "$1"
    IFS=$NL
    for e in $_ul; do IFS=$WS; [ -L "${e% *}" ] || return 1; done
    IFS=$WS
    # a repair period turned off leaves no timer behind
    [ "${REPAIR:-off}" != off ] || [ ! -e "$UNIT_DIR/$1-repair.timer" ]
}
unit_save() {   # name: the unit's files as they are, into $STATE/undo/unit (for unitrestore)
    local e='' p=''
    [ -d "$STATE/undo/unit" ] || mkdir -p "$STATE/undo/unit"
    unit_files "$1" all
    IFS=$NL
    for e in $_ul; do IFS=$WS; p=${e% *}; if slurp "$p"; then printf '%s' "$_c" >"$STATE/undo/unit/${p##*/}"; fi; done
    IFS=$WS
    if [ -L "$UNIT_DIR/multi-user.target.wants/$1.service" ]; then : >"$STATE/undo/unit/.linked"; fi
    if [ -L "$UNIT_DIR/timers.target.wants/$1-repair.timer" ]; then : >"$STATE/undo/unit/.timer-linked"; fi
    if [ -L "$UNIT_DIR/firewalld.service.wants/$1-firewalld.service" ]; then : >"$STATE/undo/unit/.hook-linked"; fi
}
add_unit() {
    [ -n "$SYSTEMD" ] || return 0
    if [ -e "$STATE/undo/unit/.removed" ]; then add_unitrestore "$1"; return 0; fi   # the undo of del_unit
    local e='' t='' l='' d=''
    unit_save "$1"
    journal "add unitrestore $1"
    unit_files "$1"
    IFS=$NL
    for e in $_ul; do IFS=$WS; eval "t=\$${e##* }"; write_file "${e% *}" "$t"; done
    IFS=$WS
    run chmod 644 "$UNIT_DIR/$1.service"
    if [ "${REPAIR:-off}" != off ]; then run chmod 644 "$UNIT_DIR/$1-repair.service" "$UNIT_DIR/$1-repair.timer" "$UNIT_DIR/$1-firewalld.service"; fi
    unit_links "$1"
    IFS=$NL
    for e in $_ul; do
        IFS=$WS; l=${e% *}; d=${l%/*}
        [ ! -L "$l" ] || continue
        [ -d "$d" ] || unit_mkdir "$d"
        run ln -s "${e##* }" "$l"
    done
    IFS=$WS
    unit_timer_off "$1"
    run systemctl daemon-reload
    if [ "${REPAIR:-off}" != off ]; then
        run systemctl start "$1-repair.timer"
        # the hook starts with firewalld; firewalld running now, it starts now (never firewalld itself)
        if systemctl is-active --quiet firewalld.service; then run systemctl start "$1-firewalld.service"; fi
    fi
}
unit_timer_off() {   # name: with repair off, a former period's timer goes
    [ "${REPAIR:-off}" = off ] || return 0
    [ -e "$UNIT_DIR/$1-repair.timer" ] || [ -L "$UNIT_DIR/timers.target.wants/$1-repair.timer" ] || [ -e "$UNIT_DIR/$1-firewalld.service" ] || return 0
    systemctl stop "$1-repair.timer" "$1-firewalld.service" >/dev/null 2>&1 || true
    run rm -f "$UNIT_DIR/timers.target.wants/$1-repair.timer" "$UNIT_DIR/$1-repair.timer" "$UNIT_DIR/$1-repair.service" \
        "$UNIT_DIR/firewalld.service.wants/$1-firewalld.service" "$UNIT_DIR/$1-firewalld.service"
    unit_prune_dirs
}
unit_mkdir() {   # dir: a missing .wants directory, made as systemctl enable makes it, listed
    run mkdir -m 755 "$1"
    unit_dirs_add "$1$NL"
}
unit_dirs_add() {   # lines: directories made for units, added to the host's list
    [ -d "$HOSTSTATE" ] || mkdir -p "$HOSTSTATE"
    printf '%s' "$1" >>"$HOSTSTATE/unit.dirs"
}
unit_prune_dirs() {   # the .wants directories made for any pair's units, where empty now
    local d='' left=''
    # (a former version listed them in the pair's own state, lost with it on destroy)
    if slurp "$STATE/unit.dirs"; then unit_dirs_add "$_c" && rm -f "$STATE/unit.dirs"; fi
    slurp "$HOSTSTATE/unit.dirs" || return 0
    IFS=$NL
    for d in $_c; do
        IFS=$WS
        case "$NL$left" in *"$NL$d$NL"*) continue ;; esac
        rmdir "$d" 2>/dev/null || true
        [ ! -d "$d" ] || left="$left$d$NL"
    done
    IFS=$WS
    if [ -n "$left" ]; then printf '%s' "$left" >"$HOSTSTATE/unit.dirs"; else rm -f "$HOSTSTATE/unit.dirs"; prune "$HOSTSTATE"; fi
}
add_unitrestore() {   # name: the files, links and timer as unit_save found them
    local e='' p='' l=''
    unit_files "$1" all
    IFS=$NL
    for e in $_ul; do
        IFS=$WS; p=${e% *}
        if slurp "$STATE/undo/unit/${p##*/}"; then write_file "$p" "${_c%"$NL"}"; else rm -f "$p"; fi
    done
    IFS=$WS
    [ ! -e "$UNIT_DIR/$1.service" ] || chmod 644 "$UNIT_DIR/$1.service" "$UNIT_DIR/$1-repair.service" "$UNIT_DIR/$1-repair.timer" "$UNIT_DIR/$1-firewalld.service" 2>/dev/null || true
    l="$UNIT_DIR/multi-user.target.wants/$1.service"
    if [ -e "$STATE/undo/unit/.linked" ]; then [ -L "$l" ] || ln -s "$UNIT_DIR/$1.service" "$l"; else rm -f "$l"; fi
    l="$UNIT_DIR/timers.target.wants/$1-repair.timer"
    if [ -e "$STATE/undo/unit/.timer-linked" ]; then [ -L "$l" ] || ln -s "$UNIT_DIR/$1-repair.timer" "$l"; else rm -f "$l"; fi
    l="$UNIT_DIR/firewalld.service.wants/$1-firewalld.service"
    if [ -e "$STATE/undo/unit/.hook-linked" ]; then
        [ -L "$l" ] || { [ -d "${l%/*}" ] || unit_mkdir "${l%/*}"; ln -s "$UNIT_DIR/$1-firewalld.service" "$l"; }
    else rm -f "$l"; fi
    unit_prune_dirs
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload || true
        if [ -e "$STATE/undo/unit/.timer-linked" ]; then systemctl start "$1-repair.timer" || true; else systemctl stop "$1-repair.timer" >/dev/null 2>&1 || true; fi
        if [ ! -e "$STATE/undo/unit/.hook-linked" ]; then systemctl stop "$1-firewalld.service" >/dev/null 2>&1 || true
        elif systemctl is-active --quiet firewalld.service; then systemctl start "$1-firewalld.service" || true; fi
    fi
}
del_unit() {   # stops the repair first: no run of the units may follow the undo
    [ -e "$UNIT_DIR/$1.service" ] || [ -e "$STATE/converge" ] || return 0   # never installed (no systemd)
    unit_save "$1"
    : >"$STATE/undo/unit/.removed"
    # the timer and the hook first, which would start the repair again, then the repair itself
    if [ -d /run/systemd/system ]; then systemctl stop "$1-repair.timer" "$1-firewalld.service" "$1-repair.service" >/dev/null 2>&1 || true; fi
    run rm -f "$UNIT_DIR/multi-user.target.wants/$1.service" "$UNIT_DIR/timers.target.wants/$1-repair.timer" \
        "$UNIT_DIR/firewalld.service.wants/$1-firewalld.service" \
        "$UNIT_DIR/$1.service" "$UNIT_DIR/$1-repair.service" "$UNIT_DIR/$1-repair.timer" "$UNIT_DIR/$1-firewalld.service" "$STATE/converge"
    unit_prune_dirs
    if [ -d /run/systemd/system ]; then run systemctl daemon-reload; fi
}

# A run of the units (the script from $STATE/converge: one that holds units, UNIT_SERVICE,
# and whose TP_SCRIPT the deployer did not set): its text is the file's; once it holds the
# lock, the file must still be that text, or the pair was removed or redeployed while it
# waited, and this run has nothing to do. (It is read there with the run's other files,
# load_files: present_unit then compares it without reading it again.) A script without
# units (persist: none) is the deployer's apply itself, never stored.
from_file() {
    [ -z "${TP_SCRIPT+x}" ] && [ -n "${UNIT_SERVICE+x}" ] || return 0
    FROM_FILE=1
    # (one program for its tens of kilobytes, not the shell's read: see read_text)
    if [ ! -e "$STATE/converge" ] || ! _c=$(cat "$STATE/converge"); then say "no stored script: the pair is not deployed here"; exit 0; fi
    TP_SCRIPT=$_c
}
still_current() {
    [ "$FROM_FILE" = 1 ] || return 0
    if [ ! -e "$STATE/converge" ]; then say "the pair was removed while this run waited for the lock: nothing to do"; exit 0; fi
    file_is "$STATE/converge" "$TP_SCRIPT$NL" || { say "a newer deployment replaced this script while this run waited for the lock: nothing to do"; exit 0; }
}

# The firewalld hook (NAME-firewalld.service runs this script with follow-firewalld): a
# firewalld reload deletes every chain of its iptables backend, ours too, and firewalld says
# so on the system bus with its Reloaded signal. Each one, and once as the hook starts
# (firewalld has just started or restarted, which replaced the rules too), starts the repair
# service: systemd runs one at a time, after the boot run. Anyone on the bus may send a
# signal by that name; the worst it does is an early repair run, which changes nothing.
follow_firewalld() {
    local l='' name='' m=''
    IFS=$NL
    for l in $DESIRED; do IFS=$WS; case $l in "unit "*) name=${l#unit } ;; esac; done
    IFS=$WS
    if [ -z "$name" ] || [ "${REPAIR:-off}" = off ]; then die "$STACK/$PAIR has no repair service to start"; fi
    command -v busctl >/dev/null 2>&1 || die "busctl (systemd's) is needed to follow firewalld's reloads"
    systemctl start --no-block "$name-repair.service" || warn "starting $name-repair.service failed"
    busctl --system --json=short monitor --match="type='signal',interface='org.fedoraproject.FirewallD1',member='Reloaded'" |
        while IFS= read -r m; do
            case $m in
                *'"member":"Reloaded"'*)
                    say "firewalld reloaded: starting $name-repair.service"
                    systemctl start --no-block "$name-repair.service" || warn "starting $name-repair.service failed"
                    ;;
            esac
        done
    die "the system bus went away (busctl monitor ended): systemd starts the hook again"
}
