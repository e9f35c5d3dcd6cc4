#!/bin/sh
# Configures one lab host and starts its sshd. init.sh runs it as
#   ip netns exec HOST unshare --uts sh /lab/host.sh HOST
# so it is already in the host's network namespace, a mount namespace of its own (ip netns
# exec makes one) and a UTS namespace of its own. Data files: /lab/world/HOST.* (world.ts).
# On failure: a line "HOST: what: stderr" in /lab/failed and /lab/run/HOST.failed.
h=$1 w=/lab/world
log=/lab/log/$h.log
exec 2>"$log"
fail() {
    echo "$h: $1: $(tail -n 5 "$log" | tr '\n' ' ')" >>/lab/failed
    : >"/lab/run/$h.failed"
    exit 1
}

echo "$h" >/proc/sys/kernel/hostname
# Private /etc /root /var /run (overlays, tmpfs uppers), /tmp and /run/netns, so what one
# host writes no other host sees and nothing reaches the machine; then /ns is covered.
mount -a -T "$w/$h.fstab" || fail "private mounts ($w/$h.fstab)"
echo "$h" >/etc/hostname
ip -b "$w/$h.ip" || fail "interfaces, addresses and routes ($w/$h.ip)"
while read -r key value; do
    printf '%s\n' "$value" >"/proc/sys/$key" || fail "sysctl $(echo "$key" | tr / .) = $value"
done <"$w/$h.sysctl"
# (an IPv6 world's addresses and routes: after the sysctls, which enable IPv6 on the devices)
if [ -e "$w/$h.ip6" ]; then
    ip -b "$w/$h.ip6" || fail "IPv6 addresses and routes ($w/$h.ip6)"
fi
if [ -e "$w/$h.fw" ]; then
    iptables-restore <"$w/$h.fw" || fail "firewall ($w/$h.fw)"
fi
if [ -e "$w/$h.fw6" ]; then
    ip6tables-restore <"$w/$h.fw6" || fail "IPv6 firewall ($w/$h.fw6)"
fi
# -r: no re-exec of sshd for each connection, a fifth of a session's time in the lab (fork and
# exec are slow in the lab's kernel); only where this sshd still has the option (before 9.8)
norexec=
/usr/sbin/sshd -t -r -f /lab/sshd_config 2>/dev/null && norexec=-r
/usr/sbin/sshd $norexec -f /lab/sshd_config -o "PidFile=/lab/run/$h.pid" -E "/lab/log/sshd-$h.log" || fail "sshd (see log/sshd-$h.log)"
