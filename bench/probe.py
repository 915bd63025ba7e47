"""Latency probe: GETs a URL at a fixed rate over one keep-alive connection and prints
"count p50_ms p99_ms errors". Open-loop pacing (a slow answer does not delay the schedule's
later slots), so a stall shows in the tail instead of being hidden by fewer samples."""
import http.client
import sys
import time
from urllib.parse import urlparse

url, rate, secs = urlparse(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
lat, errors = [], 0
start = time.perf_counter()
n = int(rate * secs)
for i in range(n):
    slot = start + i / rate
    now = time.perf_counter()
    if slot > now:
        time.sleep(slot - now)
    t0 = time.perf_counter()
    try:
        conn.request("GET", url.path)
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            errors += 1
    except Exception:
        errors += 1
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    # latency from the scheduled slot: includes any wait caused by a previous slow answer
    lat.append((time.perf_counter() - min(t0, slot)) * 1000)
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(f"{len(lat)} {q(0.5):.3f} {q(0.99):.3f} {errors}")
