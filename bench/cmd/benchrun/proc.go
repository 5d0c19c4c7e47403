package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// child is one system under test, running as a subprocess of the runner. Its output goes to a
// log file. The caller MUST call stop, which also reaps it.
type child struct {
	cmd     *exec.Cmd
	log     *os.File
	started time.Time
	done    chan struct{} // closed once the process has exited and been reaped
	waitErr error         // set before done is closed
	hwm     atomic.Int64  // the last VmHWM sampled (a high-water mark: the largest), bytes
}

// startChild starts argv in its own process group, with stdout and stderr in logPath.
func startChild(argv []string, logPath string) (*child, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("benchrun: %w", err)
	}
	fmt.Fprintf(f, "# %s\n", strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c := &child{cmd: cmd, log: f, done: make(chan struct{})}
	c.started = time.Now()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("benchrun: starting %s: %w", argv[0], err)
	}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	go c.sampleHWM()
	return c, nil
}

// hwmEvery is how often a child's VmHWM is sampled. VmHWM is a high-water mark, so a sample
// misses only what the process adds after the last one (its shutdown).
const hwmEvery = 50 * time.Millisecond

// sampleHWM records the child's VmHWM until it exits. The rusage wait4 returns cannot serve:
// Linux starts the peak RSS of an exec'd child at the RSS of the address space it replaced, and
// Go starts children with vfork (the runner's own address space), so ru_maxrss never reads
// below the runner's RSS (the runner holding N events' expectations: ~130 MiB at 2M events).
func (c *child) sampleHWM() {
	tick := time.NewTicker(hwmEvery)
	defer tick.Stop()
	for {
		if v, err := procHWM(c.pid()); err == nil {
			c.hwm.Store(v)
		}
		select {
		case <-c.done:
			return
		case <-tick.C:
		}
	}
}

// procHWM returns the peak resident set size (VmHWM) of a running process, in bytes.
func procHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v) // "<n> kB"
			if len(f) != 2 || f[1] != "kB" {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				break
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("benchrun: no VmHWM in /proc/%d/status", pid)
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace for the process to exit, then kills its process group.
// It returns how long the process took to exit after SIGTERM.
func (c *child) stop(grace time.Duration) time.Duration {
	defer c.log.Close()
	t0 := time.Now()
	if c.exited() {
		return 0
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
		<-c.done
	}
	return time.Since(t0)
}

// exitStatus describes how the process ended; call it after done is closed.
func (c *child) exitStatus() string {
	if c.cmd.ProcessState == nil {
		return "not exited"
	}
	return c.cmd.ProcessState.String()
}

// usage returns the CPU time (user + system) of the exited process, from the rusage wait4
// returned for it, and its peak resident set size as sampled while it ran (see sampleHWM): the
// JVM itself for Kafka Streams, since the runner starts java directly.
func (c *child) usage() (cpu time.Duration, maxRSS int64, err error) {
	st := c.cmd.ProcessState
	if st == nil {
		return 0, 0, errors.New("benchrun: process not reaped")
	}
	ru, ok := st.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return 0, 0, errors.New("benchrun: no rusage for the process")
	}
	cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return cpu, c.hwm.Load(), nil // 0 when never sampled
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every Linux configuration
// Go supports.
const clockTicks = 100

// procCPU returns the CPU time (user + system, all threads) a running process has used so far.
func procCPU(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, errors.New("benchrun: no pid")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields are counted after its closing paren.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("benchrun: unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("benchrun: short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// procReadBytes returns how many bytes process pid has read through read-like system calls,
// sockets included (rchar of /proc/<pid>/io): for a stream processor, about what it fetched.
func procReadBytes(pid int) (int64, error) {
	if pid <= 0 {
		return 0, errors.New("benchrun: no pid")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar: "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("benchrun: no rchar in /proc/%d/io", pid)
}
