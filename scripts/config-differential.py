#!/usr/bin/env python3
"""Differential check of `replctl dump` against `drbdadm dump` on mutated resource files.

Takes the valid corpus, applies random small mutations (drop/duplicate/replace tokens, change
numbers, swap keywords), and runs both tools. Reports every file where drbdadm accepts and the
outputs differ (comment lines and whitespace aside), or where the acceptance differs.
Usage: scripts/config-differential.py REPLCTL [COUNT] [SEED]
"""
import glob, os, random, re, subprocess, sys, tempfile

replctl = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 300
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
here = os.path.dirname(os.path.abspath(__file__))
corpus = sorted(glob.glob(os.path.join(here, "..", "Tests", "ReplctlTests", "Corpus", "valid", "*.res")))
node = os.uname().nodename
words = ["protocol", "A", "B", "C", "yes", "no", "net", "disk", "options", "startup", "handlers", "on", "volume",
         "device", "minor", "meta-disk", "internal", "address", "node-id", "0", "1", "7", "100", "1M", "40M", "4G",
         "timeout", "ko-count", "al-extents", "resync-rate", "c-plan-ahead", "fencing", "resource-only", "{", "}", ";",
         "\"x y\"", "ipv6", "[::1]:7788", "10.0.0.9:7788", "floating", "syncer", "common", "global", "usage-count",
         "-1", "65535", "70000", "disk-flushes", "no-md-flushes", "after-sb-0pri", "discard-local", "connection-mesh",
         "connection", "host", "path", "port", "proxy", "memlimit", "hosts", "quorum", "majority", "sdp", "none",
         "flexible-meta-disk", "/dev/m [1]", "[2]", "skip", "10.0.0.1:7788;", "handlers", "split-brain", "\"/bin/true\""]

def norm(text):
    return [re.sub(r"\s+", " ", l).strip() for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]

def mutate(text):
    tokens = re.findall(r'"[^"\n]*"|[{};]|[^\s{};"]+|\s+', text)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(tokens))
        if tokens[i].isspace():
            continue
        op = rng.random()
        if op < 0.3:
            tokens[i] = ""
        elif op < 0.6:
            tokens[i] = rng.choice(words)
        elif op < 0.8:
            tokens.insert(i, rng.choice(words) + " ")
        else:
            tokens[i] = re.sub(r"\d+", lambda m: str(rng.choice([0, 1, 2, 66, 67, 600, 601, 65534, 65535, int(m.group()) * 2])), tokens[i])
    return "".join(tokens)

# Deliberate differences (docs/COMPATIBILITY.md): replctl refuses these, drbdadm accepts them.
KNOWN = ("needs a value", "unterminated block", "is defined twice")

problems = known = 0
with tempfile.TemporaryDirectory() as tmp:
    for n in range(count):
        src = rng.choice(corpus)
        text = mutate(open(src).read())
        path = os.path.join(tmp, "m%d.res" % n)
        if "include" in text:
            continue
        open(path, "w").write(text)
        theirs = subprocess.run(["drbdadm", "-c", path, "dump"], capture_output=True, text=True)
        ours = subprocess.run([replctl, "dump", "-c", path, "--node", node], capture_output=True, text=True)
        t_ok = theirs.returncode == 0 and "resource" in theirs.stdout or (theirs.returncode == 0 and theirs.stdout.strip())
        if theirs.returncode == 0 and ours.returncode == 0:
            if norm(theirs.stdout) != norm(ours.stdout):
                problems += 1
                print("=== OUTPUT DIFFERS", src, "\n" + text)
                import difflib
                print("\n".join(difflib.unified_diff(norm(theirs.stdout), norm(ours.stdout), lineterm="")))
        elif theirs.returncode == 0 and any(k in ours.stderr for k in KNOWN):
            known += 1
        elif (theirs.returncode == 0) != (ours.returncode == 0):
            problems += 1
            print("=== ACCEPTANCE DIFFERS drbdadm=%d replctl=%d" % (theirs.returncode, ours.returncode), src)
            print(text)
            print("drbdadm:", "\n".join(l for l in theirs.stderr.splitlines() if "modinfo" not in l)[:400])
            print("replctl:", ours.stderr[:400])
print("%d mutated files, %d differences, %d known deliberate differences" % (count, problems, known))
