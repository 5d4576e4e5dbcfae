/* Emulate a CPU class on a newer x86-64 CPU: hide CPU features from CPUID, for `livetopic bench --emulate-cpu`.
 *
 * Preloaded (LD_PRELOAD) into every process of a bench run. Its constructor turns on CPUID faulting
 * (arch_prctl ARCH_SET_CPUID, Linux on CPUs with the `cpuid_fault` flag): every CPUID instruction then raises
 * SIGSEGV, which this handler answers with the real CPUID result less the hidden bits, so each library's
 * dispatcher (ONNX Runtime's MLAS, oneDNN, OpenVINO, PyTorch's cpuinfo, MKL) picks the kernels a CPU of that class
 * would run. Other segmentation faults go to the program's own handler (sigaction and signal are interposed for
 * SIGSEGV) or end the process as they would have. The faulting setting is kept by threads and forks and reset by
 * exec, where the preload sets it again.
 *
 * Built by worker/tools/bench/emulate.py with the masks as -D flags: MASK_7_0_EBX, MASK_7_0_ECX, MASK_7_0_EDX,
 * MASK_7_1_EAX, MASK_7_1_EDX (bits to clear in CPUID leaf 7, sub-leaves 0 and 1), EMULATED_CPU (the class's name)
 * and HIDDEN_FLAGS (the Linux names of the hidden flags, space-separated), which the two exported functions answer.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);

static struct sigaction program_segv; /* the handler the program asked for (SIG_DFL until it asks) */
static sigaction_fn real_sigaction;

static int masking; /* whether CPUID faulting could be turned on */

/* the class emulated, or NULL where this kernel or CPU could not fault CPUID (nothing is hidden then) */
const char *livetopic_emulated_cpu(void) { return masking ? EMULATED_CPU : NULL; }
const char *livetopic_hidden_cpu_flags(void) { return masking ? HIDDEN_FLAGS : ""; }

static int set_faulting(int on) { return (int)syscall(SYS_arch_prctl, ARCH_SET_CPUID, on ? 0 : 1); }

static void masked_cpuid(greg_t *regs) {
    uint32_t leaf = (uint32_t)regs[REG_RAX], sub = (uint32_t)regs[REG_RCX], a, b, c, d;
    set_faulting(0);
    __cpuid_count(leaf, sub, a, b, c, d);
    set_faulting(1);
    if (leaf == 7 && sub == 0) {
        b &= ~(uint32_t)MASK_7_0_EBX;
        c &= ~(uint32_t)MASK_7_0_ECX;
        d &= ~(uint32_t)MASK_7_0_EDX;
    } else if (leaf == 7 && sub == 1) {
        a &= ~(uint32_t)MASK_7_1_EAX;
        d &= ~(uint32_t)MASK_7_1_EDX;
    }
    regs[REG_RAX] = a;
    regs[REG_RBX] = b;
    regs[REG_RCX] = c;
    regs[REG_RDX] = d;
    regs[REG_RIP] += 2; /* CPUID is 0F A2 */
}

static void on_segv(int sig, siginfo_t *info, void *context) {
    greg_t *regs = ((ucontext_t *)context)->uc_mcontext.gregs;
    const uint8_t *ip = (const uint8_t *)regs[REG_RIP];
    /* a faulted CPUID is a general protection fault: SI_KERNEL, and the instruction's bytes are readable */
    if (info->si_code == SI_KERNEL && ip[0] == 0x0f && ip[1] == 0xa2) {
        masked_cpuid(regs);
        return;
    }
    if (program_segv.sa_flags & SA_SIGINFO) {
        program_segv.sa_sigaction(sig, info, context);
    } else if (program_segv.sa_handler != SIG_DFL && program_segv.sa_handler != SIG_IGN) {
        program_segv.sa_handler(sig);
    } else {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        real_sigaction(SIGSEGV, &dfl, NULL); /* the fault recurs on return, now fatal as it would have been */
    }
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    if (sig != SIGSEGV || real_sigaction == NULL) {
        return (real_sigaction ? real_sigaction : (sigaction_fn)dlsym(RTLD_NEXT, "sigaction"))(sig, act, old);
    }
    if (old != NULL) *old = program_segv;
    if (act != NULL) program_segv = *act;
    return 0;
}

sighandler_t signal(int sig, sighandler_t handler) {
    struct sigaction act, old;
    if (sig != SIGSEGV) return ((sighandler_t(*)(int, sighandler_t))dlsym(RTLD_NEXT, "signal"))(sig, handler);
    memset(&act, 0, sizeof act);
    act.sa_handler = handler;
    act.sa_flags = SA_RESTART;
    return sigaction(sig, &act, &old) == 0 ? old.sa_handler : SIG_ERR;
}

__attribute__((constructor)) static void start_masking(void) {
    struct sigaction act;
    real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    memset(&program_segv, 0, sizeof program_segv);
    program_segv.sa_handler = SIG_DFL;
    memset(&act, 0, sizeof act);
    act.sa_sigaction = on_segv;
    act.sa_flags = SA_SIGINFO | SA_NODEFER;
    masking = real_sigaction(SIGSEGV, &act, NULL) == 0 && set_faulting(1) == 0;
}
