//! The vCPU run-state machine with fake vCPUs, and kicks against real `VcpuFd`s.
use super::*;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc;
use std::time::Instant;

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{Kvm, VmFd};

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn parked(ctl: &VcpuControl) -> usize {
    lock(&ctl.status).parked
}

fn gettid() -> i64 {
    // SAFETY: gettid has no preconditions.
    i64::from(unsafe { libc::gettid() })
}

/// A fake vCPU thread: registered (and so kicked) like a real one, "running the guest" by
/// counting in `runs`; `until_stopped` makes it wait for Stopping at once, as a vCPU does
/// after the guest asked for a reset. Returns its host thread id.
fn fake_vcpu(
    ctl: &Arc<VcpuControl>,
    index: u32,
    runs: Arc<AtomicU64>,
    until_stopped: bool,
    stuck: Duration,
) -> JoinHandle<i64> {
    let ctl = ctl.clone();
    std::thread::spawn(move || {
        let registration = ctl.register(index);
        let answer = move || format!("CPU#{index} fake\n");
        std::thread::sleep(stuck); // a device access that takes its time
        if until_stopped {
            assert!(!ctl.checkpoint(index, &answer, true));
        }
        while ctl.checkpoint(index, &answer, false) {
            runs.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_micros(200));
        }
        drop(registration);
        gettid()
    })
}

fn counters(n: usize) -> Vec<Arc<AtomicU64>> {
    (0..n).map(|_| Arc::new(AtomicU64::new(0))).collect()
}

fn snapshot(runs: &[Arc<AtomicU64>]) -> Vec<u64> {
    runs.iter().map(|r| r.load(Ordering::Relaxed)).collect()
}

fn fake_answers(n: u32) -> Vec<Option<String>> {
    (0..n).map(|i| Some(format!("CPU#{i} fake\n"))).collect()
}

#[test]
fn pause_parks_every_vcpu_resume_releases_them_and_stopping_is_final() {
    install_kick_handler().unwrap();
    let ctl = VcpuControl::new(RunState::Running);
    let runs = counters(4);
    let handles: Vec<_> = (0..4)
        .map(|i| fake_vcpu(&ctl, i, runs[i as usize].clone(), false, Duration::ZERO))
        .collect();
    wait_until("every vCPU runs", || snapshot(&runs).iter().all(|&r| r > 0));

    assert!(ctl.set(RunState::Paused, 4));
    assert_eq!(ctl.state(), RunState::Paused);
    assert_eq!(parked(&ctl), 4);
    let frozen = snapshot(&runs);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(snapshot(&runs), frozen, "a paused vCPU ran");

    // info registers on a paused VM: every vCPU answers and the VM stays paused.
    assert_eq!(ctl.dump_registers(4), fake_answers(4));
    assert_eq!(ctl.state(), RunState::Paused);
    assert_eq!(parked(&ctl), 4);

    assert!(ctl.set(RunState::Running, 4));
    wait_until("every vCPU runs again", || {
        snapshot(&runs)
            .iter()
            .zip(&frozen)
            .all(|(now, then)| now > then)
    });
    assert_eq!(parked(&ctl), 0);

    // info registers on a running VM: paused for the moment, then resumed.
    assert_eq!(ctl.dump_registers(4), fake_answers(4));
    assert_eq!(ctl.state(), RunState::Running);
    let before = snapshot(&runs);
    wait_until("every vCPU runs after the dump", || {
        snapshot(&runs)
            .iter()
            .zip(&before)
            .all(|(now, then)| now > then)
    });

    let ids = ctl.thread_ids();
    assert!(ctl.set(RunState::Stopping, 4));
    let tids: Vec<Option<i64>> = handles
        .into_iter()
        .map(|h| Some(h.join().unwrap()))
        .collect();
    assert_eq!(ids, tids, "thread ids by vCPU index");
    assert_eq!(parked(&ctl), 4);
    // Stopping is final: a late stop/cont changes nothing and kicks nobody.
    assert!(lock(&ctl.threads).iter().all(|t| t.handle.is_none()));
    ctl.set(RunState::Running, 4);
    ctl.set(RunState::Paused, 4);
    assert_eq!(ctl.state(), RunState::Stopping);
}

#[test]
fn a_vcpu_waiting_to_be_stopped_counts_as_parked_and_answers_dumps() {
    install_kick_handler().unwrap();
    let ctl = VcpuControl::new(RunState::Running);
    let runs = counters(2);
    let a = fake_vcpu(&ctl, 0, runs[0].clone(), false, Duration::ZERO);
    let b = fake_vcpu(&ctl, 1, runs[1].clone(), true, Duration::ZERO);
    wait_until("vCPU 1 waits to be stopped", || parked(&ctl) == 1);
    let t = Instant::now();
    assert!(ctl.set(RunState::Paused, 2));
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(ctl.dump_registers(2), fake_answers(2));
    assert!(ctl.set(RunState::Running, 2));
    wait_until("vCPU 0 resumes", || parked(&ctl) == 1);
    assert_eq!(runs[1].load(Ordering::Relaxed), 0);
    assert!(ctl.set(RunState::Stopping, 2));
    a.join().unwrap();
    b.join().unwrap();
}

#[test]
fn set_gives_up_on_a_vcpu_that_does_not_park() {
    install_kick_handler().unwrap();
    let ctl = VcpuControl::with_park_timeout(RunState::Running, Duration::from_millis(100));
    let h = fake_vcpu(
        &ctl,
        0,
        Arc::new(AtomicU64::new(0)),
        false,
        Duration::from_millis(700),
    );
    wait_until("vCPU 0 is registered", || ctl.thread_ids().len() == 1);
    let t = Instant::now();
    assert!(!ctl.set(RunState::Paused, 1), "a stuck vCPU parked");
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(100) && waited < Duration::from_millis(600),
        "waited {waited:?}"
    );
    wait_until("vCPU 0 parks once its access is done", || parked(&ctl) == 1);
    assert!(ctl.set(RunState::Stopping, 1));
    h.join().unwrap();
}

/// A VM whose one vCPU spins on `jmp $` at address 0 in real mode, so KVM_RUN never returns
/// on its own; `vm` is dropped before the guest page.
struct Spinner {
    _vm: VmFd,
    page: *mut libc::c_void,
}

impl Drop for Spinner {
    fn drop(&mut self) {
        // SAFETY: `page` is the 4 KiB mapping made in `spinner`; the VM using it is gone
        // (fields drop after this, but a memslot over unmapped memory only faults the guest).
        unsafe { libc::munmap(self.page, 4096) };
    }
}

fn spinner() -> (Spinner, VcpuFd) {
    assert!(
        std::path::Path::new("/dev/kvm").exists(),
        "/dev/kvm is missing: the vCPU kick tests need KVM"
    );
    let kvm = Kvm::new().expect("open /dev/kvm");
    let vm = kvm.create_vm().expect("KVM_CREATE_VM");
    // SAFETY: a fresh private anonymous mapping; the result is checked.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(page, libc::MAP_FAILED);
    // SAFETY: `page` is 4096 writable bytes.
    unsafe { page.cast::<[u8; 2]>().write([0xeb, 0xfe]) }; // jmp $
    let spinner = Spinner { _vm: vm, page };
    let region = kvm_userspace_memory_region {
        slot: 0,
        guest_phys_addr: 0,
        memory_size: 4096,
        userspace_addr: page as u64,
        flags: 0,
    };
    // SAFETY: the region is the mapping `spinner` owns and unmaps only after the VM is gone.
    unsafe { spinner._vm.set_user_memory_region(region) }.expect("memory region");
    let vcpu = spinner._vm.create_vcpu(0).expect("KVM_CREATE_VCPU");
    let mut sregs = vcpu.get_sregs().unwrap();
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    vcpu.set_sregs(&sregs).unwrap();
    let mut regs = vcpu.get_regs().unwrap();
    regs.rip = 0;
    regs.rflags = 2;
    vcpu.set_regs(&regs).unwrap();
    (spinner, vcpu)
}

fn run_errno(vcpu: &mut VcpuFd) -> Result<String, i32> {
    vcpu.run().map(|e| format!("{e:?}")).map_err(|e| e.errno())
}

#[test]
fn the_spinning_guest_stays_in_kvm_run_until_kicked() {
    install_kick_handler().unwrap();
    let (_spinner, mut vcpu) = spinner();
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        let page = RunPage::publish(&mut vcpu);
        let r = run_errno(&mut vcpu);
        drop(page);
        tx.send((r, vcpu.get_kvm_run().immediate_exit)).unwrap();
    });
    std::thread::sleep(Duration::from_millis(100));
    assert!(rx.try_recv().is_err(), "KVM_RUN returned without a kick");
    h.kill(kick_signal()).unwrap();
    let (r, flag) = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the kick did not end KVM_RUN");
    assert_eq!(r, Err(libc::EINTR));
    assert_eq!(flag, 1, "the kick handler sets immediate_exit");
    h.join().unwrap();
}

#[test]
fn a_kick_just_before_kvm_run_is_not_lost() {
    install_kick_handler().unwrap();
    let (_spinner, mut vcpu) = spinner();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let page = RunPage::publish(&mut vcpu);
        // The kick lands after the vCPU's last look at the run state, before KVM_RUN (a
        // signal a thread sends itself is handled before pthread_kill returns).
        // SAFETY: this thread is alive; the kick handler is installed.
        unsafe { libc::pthread_kill(libc::pthread_self(), kick_signal()) };
        let flag = vcpu.get_kvm_run().immediate_exit;
        let r = run_errno(&mut vcpu);
        vcpu.set_kvm_immediate_exit(0);
        drop(page);
        tx.send((flag, r)).unwrap();
    });
    let (flag, r) = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the kick was lost: KVM_RUN ran the guest");
    assert_eq!(flag, 1);
    assert_eq!(r, Err(libc::EINTR));
}

#[test]
fn set_returns_promptly_with_a_real_vcpu_in_kvm_run() {
    install_kick_handler().unwrap();
    let (_spinner, vcpu) = spinner();
    let ctl = VcpuControl::new(RunState::Running);
    let (tx, rx) = mpsc::channel();
    let h = spawn_vcpu(
        0,
        vcpu,
        Arc::new(Buses::default()),
        ctl.clone(),
        EventSink(tx),
    )
    .unwrap();
    wait_until("vCPU 0 is registered", || ctl.thread_ids().len() == 1);
    let tid = ctl.thread_ids()[0].unwrap();
    let comm = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap();
    assert_eq!(comm.trim(), "vcpu0");
    // Resuming and pausing at once often kicks the vCPU between its look at the run
    // state and KVM_RUN; every pause must still complete at once.
    let mut slowest = Duration::ZERO;
    for _ in 0..300 {
        assert!(ctl.set(RunState::Running, 1));
        let t = Instant::now();
        assert!(ctl.set(RunState::Paused, 1), "the vCPU did not park");
        slowest = slowest.max(t.elapsed());
    }
    assert!(
        slowest < Duration::from_secs(1),
        "slowest pause {slowest:?}"
    );
    assert!(ctl.set(RunState::Running, 1));
    std::thread::sleep(Duration::from_millis(20));
    let regs = ctl.dump_registers(1);
    let text = regs[0].as_deref().expect("vCPU 0 answered");
    assert!(text.starts_with("CPU#0\n"), "{text}");
    assert!(text.contains("RIP=0000000000000000"), "{text}");
    assert_eq!(ctl.state(), RunState::Running);
    assert!(ctl.set(RunState::Stopping, 1));
    h.join().unwrap();
    assert!(rx.try_recv().is_err(), "the spinning guest sent no event");
}
