#!/usr/bin/perl
# Usage: no-xstate.pl linux.uml ARGS...  - execs the lab kernel under a seccomp filter that makes
# ptrace(PTRACE_GETREGSET/PTRACE_SETREGSET, pid, NT_X86_XSTATE, ...) fail with EIO.
#
# Why: user-mode-linux 6.1 saves and restores its processes' FPU state with a fixed-size
# XSTATE buffer. Host kernels accept PTRACE_SETREGSET(NT_X86_XSTATE) only with the full
# XSAVE size, which on CPUs with AVX-512 or AMX is larger, so every return to a lab process
# fails ("userspace - ptrace set fp regs failed, errno = 14") and init dies at once. When
# the XSTATE probe fails, UML falls back to PTRACE_GETFPREGS/SETFPREGS (the i387/SSE area),
# which every x86-64 host accepts. The filter touches nothing else; processes inside the
# lab make their system calls through UML (PTRACE_SYSEMU), which seccomp does not see.
# The price: that area holds x87/SSE only, so AVX/AVX-512 register state of lab processes
# does not survive UML's page-fault handling (insmod fails, `sort` gives wrong output).
# lab.ts therefore starts every lab process with glibc's and OpenSSL's AVX paths off.
# Perl because it is always there on Debian (perl-base is Essential) and can call prctl.
use strict;
use warnings;

# classic BPF over struct seccomp_data { int nr; u32 arch; u64 ip; u64 args[6]; }
my @filter = (
    [0x20, 0, 0, 4],             # A = arch
    [0x15, 0, 8, 0xc000003e],    # if A != AUDIT_ARCH_X86_64 goto allow
    [0x20, 0, 0, 0],             # A = nr
    [0x15, 0, 6, 101],           # if A != __NR_ptrace goto allow
    [0x20, 0, 0, 16],            # A = args[0] (request)
    [0x15, 1, 0, 0x4204],        # if A == PTRACE_GETREGSET goto check
    [0x15, 0, 3, 0x4205],        # if A != PTRACE_SETREGSET goto allow
    [0x20, 0, 0, 32],            # check: A = args[2] (regset type)
    [0x15, 0, 1, 0x202],         # if A != NT_X86_XSTATE goto allow
    [0x06, 0, 0, 0x00050005],    # return SECCOMP_RET_ERRNO | EIO
    [0x06, 0, 0, 0x7fff0000],    # allow: return SECCOMP_RET_ALLOW
);
my $program = join '', map { pack 'SCCL', @$_ } @filter;
my $fprog = pack 'S x6 P', scalar(@filter), $program;    # struct sock_fprog
my ($SYS_prctl, $PR_SET_NO_NEW_PRIVS, $PR_SET_SECCOMP, $SECCOMP_MODE_FILTER) = (157, 38, 22, 2);
syscall($SYS_prctl, $PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 or die "no-xstate.pl: PR_SET_NO_NEW_PRIVS: $!\n";
syscall($SYS_prctl, $PR_SET_SECCOMP, $SECCOMP_MODE_FILTER, $fprog, 0, 0) == 0 or die "no-xstate.pl: seccomp: $!\n";
exec { $ARGV[0] } @ARGV or die "no-xstate.pl: exec $ARGV[0]: $!\n";
