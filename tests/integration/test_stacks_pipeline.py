"""Call stacks end to end: a real agent with --stacks=both samples (cpu-clock) a C target that burns
its CPU in h11_stack_burn, called from h11_stack_outer, called from main; its windows go through
the coordinator into a ClickHouse server started here. Afterwards (deduplicated reads, FINAL):
  - every stack id a ms_flow_rollup row of the agent references has its row in ms_stack_traces;
  - each ms_stack_traces row has kernel_stack + user_stack frames (the counts of its two parts);
  - some stored stack that rollup rows reference has the user frames h11_stack_burn then
    h11_stack_outer (innermost first), with the target's module;
  - the join of docs/STORAGE.md (rollup x stack traces) ranks a chain through h11_stack_burn first
    among the target's rows."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import chrun  # noqa: E402
import clickhouse  # noqa: E402
import mstest  # noqa: E402

DB = "ms_h11_stacks"
HOST = "h11-stacks"
RUN_S = 12
NO_STACK = 2**64 - 1

TARGET_C = r"""
#include <stdlib.h>
#include <time.h>
__attribute__((noinline)) unsigned long h11_stack_burn(unsigned long n)
{
	volatile unsigned long acc = 1;
	for (unsigned long i = 0; i < n; i++)
		acc = acc * 3 + i;
	return acc;
}
__attribute__((noinline)) unsigned long h11_stack_outer(unsigned long n)
{
	return h11_stack_burn(n) + 1;
}
int main(int argc, char **argv)
{
	time_t end = time(NULL) + (argc > 1 ? atoi(argv[1]) : 5);
	unsigned long s = 0;
	while (time(NULL) < end)
		s += h11_stack_outer(1000000);
	return (int)(s & 0);
}
"""


def build_target(tmp):
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        raise unittest.SkipTest("no C compiler to build the target program")
    src = os.path.join(tmp, "h11burn.c")
    with open(src, "w") as f:
        f.write(TARGET_C)
    exe = os.path.join(tmp, "h11burn")
    mstest.run([cc, "-O1", "-g", "-fno-omit-frame-pointer", "-o", exe, src])
    return exe


def stored(ch):
    """(stack ids referenced by rollup rows, {stack_id: (user, kernel, [frames])})."""
    refs = {int(r[0]) for r in ch.rows(f"SELECT DISTINCT toString(stack_id) FROM {DB}.ms_flow_rollup FINAL "
                                       f"WHERE host = '{HOST}' AND samples > 0")}
    refs.discard(NO_STACK)
    traces = {}
    for r in ch.rows(f"SELECT toString(stack_id), user_stack, kernel_stack, arrayStringConcat(frames, '|') "
                     f"FROM {DB}.ms_stack_traces FINAL WHERE host = '{HOST}'"):
        traces[int(r[0])] = (int(r[1]), int(r[2]), r[3].split("|") if r[3] else [])
    return refs, traces


class StacksPipeline(unittest.TestCase):
    def setUp(self):
        mstest.require_root(self)
        clickhouse.skip_unless_available()
        if not os.path.exists(chrun.COORD):
            raise unittest.SkipTest("coordinator not built")

    def test_stacks_reach_clickhouse(self):
        tmp = tempfile.mkdtemp(prefix="ms-h11-stacks-")
        exe = build_target(tmp)
        with clickhouse.Server() as ch:
            coord = chrun.Coordinator(ch, DB).start()
            agent = mstest.Agent(f"--coordinator-url={coord.url}", f"--agent-id={HOST}", "--events=cpu-clock",
                                 "--sample-freq=499", "--window-ms=1000", "--stacks=both")
            burn = None
            try:
                agent.start()
                burn = subprocess.Popen([exe, str(RUN_S)])
                burn.wait(timeout=RUN_S + 60)
                time.sleep(1.5)
            finally:
                if burn and burn.poll() is None:
                    burn.kill()
                    burn.wait()
                self.assertEqual(agent.stop(), 0, agent.log())
            try:
                ws = agent.windows()
                nstacks = sum(len(w.get("stacks", [])) for w in ws)
                print(f"\nagent: {len(ws)} windows, {nstacks} stack dictionary entries in its window log")
                self.assertGreater(nstacks, 0, "the agent resolved no stacks")
                end = time.time() + 90
                while True:
                    refs, traces = stored(ch)
                    if (refs and refs <= set(traces)) or time.time() > end:
                        break
                    time.sleep(0.5)
                print(f"ClickHouse: {len(refs)} stack ids referenced by rollup rows, {len(traces)} in ms_stack_traces")
                rows = ch.scalar(f"SELECT count() FROM {DB}.ms_flow_rollup FINAL WHERE host = '{HOST}'")
                self.assertTrue(refs, f"no rollup row carries a stack id ({rows} rollup rows); coordinator log:\n"
                                + coord.log()[-3000:])
                self.assertEqual(refs - set(traces), set(), "rollup stack ids without a row in ms_stack_traces")
                for sid, (nuser, nkernel, frames) in traces.items():
                    self.assertEqual(nuser + nkernel, len(frames), f"stack {sid:#x}: frame counts")
                    self.assertLessEqual(len(frames), 128)
                hits = []
                for sid in refs:
                    nuser, nkernel, frames = traces[sid]
                    user = [f.rsplit("!", 1)[-1] for f in frames[nkernel:]]
                    if "h11_stack_burn" in user:
                        i = user.index("h11_stack_burn")
                        if i + 1 < len(user) and user[i + 1] == "h11_stack_outer":
                            hits.append(sid)
                self.assertTrue(hits, "no stored stack has h11_stack_burn <- h11_stack_outer; a few stacks: "
                                + repr(list(traces.values())[:5]))
                sample = traces[hits[0]][2]
                print(f"{len(hits)} stacks through h11_stack_burn, e.g. {hits[0]:#x}: {sample[:6]}")
                burn_frame = next(f for f in sample if f.endswith("!h11_stack_burn") or f == "h11_stack_burn")
                self.assertIn("h11burn", burn_frame, "the frame names the target's module")
                samples = ch.scalar(f"SELECT sum(samples) FROM {DB}.ms_flow_rollup FINAL WHERE host = '{HOST}' "
                                    f"AND stack_id IN ({','.join(str(s) for s in hits)})")
                print(f"samples on those stacks: {samples}")
                self.assertGreater(samples, 0)
                # the join of docs/STORAGE.md: the target's hottest call chain is the burning one
                top = ch.rows(f"SELECT arrayStringConcat(frames, '|'), sum(samples) AS n FROM {DB}.ms_flow_rollup "
                              f"ANY INNER JOIN (SELECT host, stack_id, frames FROM {DB}.ms_stack_traces FINAL) "
                              f"USING (host, stack_id) WHERE host = '{HOST}' AND pid = {burn.pid} GROUP BY frames "
                              f"ORDER BY n DESC LIMIT 3")
                print("hottest call chains:", [(r[0][:80], r[1]) for r in top])
                self.assertTrue(top and "h11_stack_burn" in top[0][0], top)
            finally:
                self.assertEqual(coord.stop(), 0, coord.log())
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    mstest.main()
