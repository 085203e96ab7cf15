"""No AVX-512 kernel reads a spilled register from the stack in its FMAs.

GCC 12 once kept one of the dense pair tile's two weight vectors on the stack in some builds and
reloaded it at every FMA (the 2 × 10 tile ran 1.4-1.6x its neighbours' time; bench/NOTES.md, eighteenth
session), and whether it did changed with unrelated edits. This disassembles the kernel objects
(objdump) and fails naming every AVX-512 function with an FMA reading the stack, but those that hold
more live values than the 32 vector registers by design (ALLOWED). Exit 77 (skipped): no objdump, or
no AVX-512 code in the objects (another architecture).

    python tests/cpp/check_register_spills.py OBJECT...
"""
import re
import shutil
import subprocess
import sys

# Functions whose stack operands are by design: a 5 × 5 depthwise tile keeps 25 weights and its
# accumulators live, Winograd's input transform a 6 × 6 tile of vectors.
ALLOWED = [
    re.compile(r"ConvF32<[^>]*Avx512>::dw_plane_(reuse|in_place)<\d+, 5,"),
    re.compile(r"WinogradF32<[^>]*Avx512>::input"),
]
FUNCTION = re.compile(r"^[0-9a-f]+ <(.*)>:$")
STACK_FMA = re.compile(r"\bvfn?m(add|sub)\w*\s+[^,]*\(%r[sb]p\)")


def main(objects):
    objdump = shutil.which("objdump")
    if objdump is None:
        print("objdump not found: skipped")
        return 77
    offenders, avx512_functions = {}, 0
    for path in objects:
        text = subprocess.run([objdump, "-d", "-C", "--no-show-raw-insn", path], capture_output=True, text=True,
                              check=True).stdout
        name = None
        for line in text.splitlines():
            match = FUNCTION.match(line)
            if match:
                name = match.group(1) if "Avx512" in match.group(1) else None
                avx512_functions += name is not None
            elif name is not None and STACK_FMA.search(line) and not any(a.search(name) for a in ALLOWED):
                offenders[name] = offenders.get(name, 0) + 1
    if avx512_functions == 0:
        print("no AVX-512 functions in the objects: skipped")
        return 77
    for name, count in sorted(offenders.items()):
        print(f"{count} FMA(s) read the stack in {name}")
    print(f"{avx512_functions} AVX-512 functions checked, {len(offenders)} with stack operands in FMAs")
    return 1 if offenders else 0


if __name__ == "__main__":
    # CTest hands $<TARGET_OBJECTS:...> over as one ;-separated argument.
    sys.exit(main([path for arg in sys.argv[1:] for path in arg.split(";") if path]))
