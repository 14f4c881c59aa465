"""Echo driver for bench/persistent.mjs, one echo function for both runtime modes, so the
benchmark compares the modes and nothing else.

  python3 -S echo.py               spawn mode (ABI v1): the payload on stdin, its echo on stdout
  python3 -S echo.py --persistent  runtime.mode "persistent": one JSON line {"id","payload"} in,
                                   one {"id","ok":true,"result"} out, until stdin closes
"""
import json
import sys


def echo(payload):
    return payload


def dumps(value):
    return json.dumps(value, separators=(',', ':'))


def main():
    if sys.argv[1:] == ['--persistent']:
        read, write, flush = sys.stdin.buffer.readline, sys.stdout.buffer.write, sys.stdout.buffer.flush
        while True:
            line = read()
            if not line:
                return
            request = json.loads(line)
            write((dumps({'id': request['id'], 'ok': True, 'result': echo(request['payload'])}) + '\n').encode())
            flush()
    sys.stdout.write(dumps(echo(json.loads(sys.stdin.buffer.read()))) + '\n')


main()
