"""Burns CPU in N processes for S seconds (the load of the token-bucket and shutdown tests)."""
import multiprocessing
import sys
import time


def spin(seconds):
    end = time.time() + seconds
    x = 0
    while time.time() < end:
        x += 1


if __name__ == "__main__":
    n, s = int(sys.argv[1]), float(sys.argv[2])
    ps = [multiprocessing.Process(target=spin, args=(s,)) for _ in range(n)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
