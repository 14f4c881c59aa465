#!/usr/bin/env python3
"""Benchmark clients for bench/run.mjs: one process loops N times and prints per-iteration
microseconds as a JSON array, so process start-up is never counted (only the loop is timed).

  client.py invoke <invoke.json> <result.json> <payload-file> <n> <warmup>
      write the payload to control/invoke.json (open 'w', write, close: close() returns when the
      invocation has finished), then read result.json; checks the result equals the payload.
  client.py rdwr <invoke.json> <payload-file> <n> <warmup>
      the one-descriptor transaction: open O_RDWR, write, read the outcome from the same fd.
  client.py direct <executable> <payload-file> <n> <warmup>
      run the driver with subprocess.run(stdin=payload): the baseline without Acheron.
  client.py statcat <path> <n> <warmup>
      os.stat(path), then open, read to end of file, close (what `stat f; cat f` does).
  client.py invoke-each <services-dir> <payload-file> <prefix>
      one invocation (and result.json read) of every service whose id starts with prefix.
  client.py appear <dir> <name> <timeout-s>
      prints "ready", then lists <dir> in a loop until <name> is in it; prints the CLOCK_MONOTONIC
      nanoseconds when it was first seen (or "timeout"): how fast a change shows in a mount.
  client.py rdwr-until <invoke.json> <payload-file> <start-epoch-s> <seconds>
      throughput: waits until start-epoch-s (so parallel clients start together), then loops
      rdwr transactions for `seconds`; prints {"count": transactions finished in the window,
      "samples": their microseconds}.

A last argument --echo (invoke, rdwr, rdwr-until) checks for the reference echo drivers' answer
instead, {"ok":true,...,"echo":<payload>} (bin/acheron-echo-driver.js, wasm/echo.ts), whose
payload is the compact JSON of the payload file.
"""
import json
import os
import subprocess
import sys
import time

now = time.perf_counter_ns


def read_all(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b''.join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def rdwr_once(invoke, payload):
    fd = os.open(invoke, os.O_RDWR)
    try:
        os.write(fd, payload)
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    expect(b''.join(chunks), payload, 'transaction read')


def loop(n, warmup, once):
    samples = []
    for i in range(warmup + n):
        start = now()
        once()
        elapsed = now() - start
        if i >= warmup:
            samples.append(elapsed / 1000)
    json.dump(samples, sys.stdout)


ECHO = False


def expect(got, want, what):
    if ECHO:
        if got.startswith(b'{"ok":true,') and got.endswith(b'"echo":' + want.strip() + b'}\n'):
            return
    elif got == want:
        return
    sys.exit(f'{what}: expected {"the echo of " if ECHO else ""}{want[:80]!r}, got {got[:80]!r}')


def main(argv):
    global ECHO
    if argv[-1] == '--echo':
        ECHO, argv = True, argv[:-1]
    mode = argv[0]
    if mode == 'invoke':
        invoke, result, payload_file, n, warmup = argv[1:]
        payload = read_all(payload_file)

        def once():
            fd = os.open(invoke, os.O_WRONLY | os.O_TRUNC)
            try:
                os.write(fd, payload)
            finally:
                os.close(fd)  # commits and waits for the invocation (SPEC §3)
            expect(read_all(result), payload, 'result.json')
        loop(int(n), int(warmup), once)
    elif mode == 'rdwr':
        invoke, payload_file, n, warmup = argv[1:]
        payload = read_all(payload_file)

        loop(int(n), int(warmup), lambda: rdwr_once(invoke, payload))
    elif mode == 'rdwr-until':
        invoke, payload_file, start_at, seconds = argv[1:]
        payload = read_all(payload_file)
        start_at, seconds = float(start_at), float(seconds)
        delay = start_at - time.time()
        if delay > 0:
            time.sleep(delay)
        # The window in this process's monotonic clock, from the shared wall-clock start.
        end = now() + int((start_at + seconds - time.time()) * 1e9)
        samples = []
        while True:
            start = now()
            if start >= end:
                break
            rdwr_once(invoke, payload)
            finished = now()
            if finished <= end:
                samples.append((finished - start) / 1000)
        json.dump({'count': len(samples), 'samples': samples}, sys.stdout)
    elif mode == 'direct':
        executable, payload_file, n, warmup = argv[1:]
        payload = read_all(payload_file)

        def once():
            run = subprocess.run([executable], input=payload, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
            expect(run.stdout, payload, 'driver stdout')
        loop(int(n), int(warmup), once)
    elif mode == 'statcat':
        path, n, warmup = argv[1:]

        def once():
            os.stat(path)
            read_all(path)
        loop(int(n), int(warmup), once)
    elif mode == 'invoke-each':
        services, payload_file, prefix = argv[1:]
        payload = read_all(payload_file)
        ids = sorted(name for name in os.listdir(services) if name.startswith(prefix))
        samples = []
        for service_id in ids:
            start = now()
            fd = os.open(os.path.join(services, service_id, 'control', 'invoke.json'), os.O_WRONLY | os.O_TRUNC)
            try:
                os.write(fd, payload)
            finally:
                os.close(fd)
            expect(read_all(os.path.join(services, service_id, 'result.json')), payload, f'{service_id}/result.json')
            samples.append((now() - start) / 1000)
        json.dump(samples, sys.stdout)
    elif mode == 'appear':
        directory, name, timeout_s = argv[1:]
        print('ready', flush=True)
        deadline = time.monotonic() + float(timeout_s)
        while time.monotonic() < deadline:
            if name in os.listdir(directory):
                print(time.monotonic_ns(), flush=True)
                return
            time.sleep(0.0005)
        print('timeout', flush=True)
    else:
        sys.exit(f'unknown mode {mode!r}')


if __name__ == '__main__':
    main(sys.argv[1:])
