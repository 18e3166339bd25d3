"""`vmlayout fit`: the smallest dynamic root-complex windows that hold every BAR.

Beyond the reference. A pool's need depends on where its window lands (the pool base is
aligned up to the pool's alignment inside the window), and where a window lands depends
on every window's size, so each window is searched with the whole config resolved: from
the pool's size upward, jumping straight to the size that would suffice if the window
did not move, then downward while one step smaller still works. Passes repeat until no
size changes. Low windows move in 2 MiB steps and high ones in 1 GiB steps: those are
the windows' placement alignments, so smaller steps would only add padding.

The work stays near linear in root complexes: a window whose pool is aligned within its
step needs exactly its pool wherever it lands and is never searched; a search whose
inputs (the other sizes) did not change is not repeated; and the last few resolutions
are kept, since a search starts or ends at the sizes the previous one settled on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from vmlayout.allocator import WidthExcess, width_excess
from vmlayout.errors import VmLayoutError
from vmlayout.pci.assign import Level, align_up, level_layout
from vmlayout.pci.enumerate import enumerate_functions
from vmlayout.pci.model import AssignmentParams
from vmlayout.pci_layout.resolved import assign_each
from vmlayout.policy import (
    DynamicMmio,
    FixedMmio,
    ResolvedLayout,
    RootComplexConfig,
    VmConfig,
    resolve,
)
from vmlayout.ranges import (
    FOUR_GIB,
    GIB,
    MIB,
    PAGE_SIZE,
    MemoryRange,
    align_down,
    format_address,
    format_size,
)

LOW_STEP = 2 * MIB
HIGH_STEP = GIB
LOW = "low_mmio"
HIGH = "high_mmio"
STEP = {LOW: LOW_STEP, HIGH: HIGH_STEP}
#: The allocator works below 2**64; no window may reach that far.
SIZE_LIMIT = {LOW: FOUR_GIB, HIGH: 1 << 63}
MAX_PASSES = 16
MAX_JUMPS = 4096


def impossible(reason: str) -> VmLayoutError:
    return VmLayoutError("fit_impossible", reason)


class Below4GibError(VmLayoutError):
    """No fit because the space below 4 GiB ran out (raising the chipset low size may help)."""

    def __init__(self, reason: str) -> None:
        super().__init__("fit_impossible", reason)


def root_level(rc: RootComplexConfig) -> Level:
    """The root bus's sizing: it depends on the devices and bus range, never on windows."""
    params = AssignmentParams(rc.start_bus, rc.end_bus, preserve_bars=rc.preserve_bars)
    scanned, _ = enumerate_functions(rc.devices, params)
    return level_layout(scanned)


def pool_of(level: Level, window: str) -> tuple[int, int, int | None]:
    """(size, alignment, pinned base) of the root pool that `window` holds."""
    if window == LOW:
        return level.mem32, level.align32, level.base32
    return level.mem64, level.align64, level.base64


def pool_need(level: Level, window: str, placed: MemoryRange) -> int:
    """Bytes from the window's start to the end of its pool (0: nothing goes there).

    The resolved high window is never empty, so the 64-bit pool always goes high."""
    size, alignment, fixed = pool_of(level, window)
    if size == 0:
        return 0
    base = fixed if fixed is not None else align_up(placed.start, alignment)
    if base < placed.start:
        return SIZE_LIMIT[window] + 1  # a pin below the window: no size moves it there
    return base + size - placed.start


@dataclass(frozen=True, slots=True)
class WindowFit:
    rc: str
    index: int
    window: str
    before: int
    after: int
    pool_size: int
    pool_alignment: int
    placed: MemoryRange


@dataclass(frozen=True, slots=True)
class FitResult:
    config: VmConfig
    windows: tuple[WindowFit, ...]
    chipset_low_before: int
    chipset_low_after: int
    layout_top: int
    host_bits: int
    #: Whether `host_bits` is the caller's (`--host-phys-bits`) or the config's width.
    host_bits_given: bool = False
    #: Why the fitted layout does not fit `host_bits`; None when it fits.
    excess: WidthExcess | None = None

    @property
    def fits_host(self) -> bool:
        return self.excess is None

    def width_error(self) -> VmLayoutError:
        """The refusal when the fitted layout does not fit the host: the minimum width,
        what reaches highest and where the limit came from."""
        assert self.excess is not None
        source = (
            f"--host-phys-bits {self.host_bits}"
            if self.host_bits_given
            else f"the config's physical_address_size = {self.host_bits}"
        )
        where = "--host-phys-bits" if self.host_bits_given else "physical_address_size"
        return impossible(
            f"{where}: even the fitted layout ends at {format_address(self.layout_top)}, "
            f"beyond {self.host_bits} bits" + self.excess.detail(source)
        )


Key = tuple[int, str]


def _window_of(rc: RootComplexConfig, window: str) -> DynamicMmio | FixedMmio:
    return rc.low_mmio if window == LOW else rc.high_mmio


def with_sizes(config: VmConfig, sizes: dict[Key, int], width: int | None = None) -> VmConfig:
    rcs = []
    for index, rc in enumerate(config.pcie_root_complexes):
        if (index, LOW) in sizes:
            rc = replace(rc, low_mmio=DynamicMmio(sizes[(index, LOW)]))
        if (index, HIGH) in sizes:
            rc = replace(rc, high_mmio=DynamicMmio(sizes[(index, HIGH)]))
        rcs.append(rc)
    config = replace(config, pcie_root_complexes=tuple(rcs))
    return config if width is None else replace(config, physical_address_size=width)


class _Search:
    def __init__(self, config: VmConfig, levels: dict[int, Level]) -> None:
        self.config = config
        self.levels = levels
        self.cache: dict[tuple[tuple[Key, int], ...], ResolvedLayout] = {}

    def resolve(self, sizes: dict[Key, int]) -> ResolvedLayout:
        """The config resolved with these window sizes; the last few are kept, since
        a search usually starts or ends at the sizes the previous one settled on."""
        state = tuple(sorted(sizes.items()))
        if state in self.cache:
            return self.cache[state]
        resolved = self._resolve(sizes)
        if len(self.cache) >= 4:
            del self.cache[next(iter(self.cache))]
        self.cache[state] = resolved
        return resolved

    def _resolve(self, sizes: dict[Key, int]) -> ResolvedLayout:
        try:
            return resolve(with_sizes(self.config, sizes, 63))
        except VmLayoutError as error:
            if error.kind == "exhausted" and "Mmio32" in error.message:
                raise Below4GibError(
                    "the 32-bit windows do not fit below 4 GiB (32-bit BARs exceed the space "
                    f"below 4 GiB): {error.message}"
                ) from None
            raise impossible(
                f"the config does not resolve: {error.kind}: {error.message}"
            ) from None

    def need(self, sizes: dict[Key, int], key: Key) -> tuple[int, MemoryRange]:
        index, window = key
        rc = self.resolve(sizes).pcie_root_complexes[index]
        placed = rc.low_mmio if window == LOW else rc.high_mmio
        return pool_need(self.levels[index], window, placed), placed

    def fits(self, sizes: dict[Key, int], key: Key, size: int) -> bool:
        need, _ = self.need({**sizes, key: size}, key)
        return need <= size

    def lower_bound(self, key: Key) -> int:
        index, window = key
        pool, _, _ = pool_of(self.levels[index], window)
        return max(STEP[window], align_up(pool, STEP[window]))

    def too_large(self, key: Key) -> VmLayoutError:
        index, window = key
        rc = self.config.pcie_root_complexes[index]
        pool, alignment, _ = pool_of(self.levels[index], window)
        reason = (
            f"{rc.name}: no {window} size up to {format_size(SIZE_LIMIT[window])} holds "
            f"its BARs ({format_size(pool)} pool, alignment {format_size(alignment)})"
        )
        if window == LOW:
            return Below4GibError(f"{reason}: 32-bit BARs cannot exceed the space below 4 GiB")
        return impossible(reason)

    def search(self, sizes: dict[Key, int], key: Key) -> int:
        index, window = key
        step = STEP[window]
        lowest = self.lower_bound(key)
        size = lowest
        for _ in range(MAX_JUMPS):
            if size > SIZE_LIMIT[window]:
                raise self.too_large(key)
            need, _ = self.need({**sizes, key: size}, key)
            if need <= size:
                break
            size = max(size + step, align_up(need, step))
        else:
            raise impossible(f"{window} of root complex {index}: the search does not settle")
        while size - step >= lowest and self.fits(sizes, key, size - step):
            size -= step
        return size

    def position_dependent(self, key: Key) -> bool:
        """Whether the window's need can change with where it lands: a pool aligned
        beyond the window's step (the window's own placement alignment), or pinned.
        Otherwise the pool starts at the window's start wherever that is."""
        index, window = key
        _, alignment, fixed = pool_of(self.levels[index], window)
        return fixed is not None or alignment > STEP[window]


def fit_config(config: VmConfig, host_bits: int | None = None) -> FitResult:
    """The smallest dynamic windows of every root complex with devices (see module doc).

    When the space below 4 GiB is the limit, the search is repeated with the chipset low
    window grown to the next sizes that align its start (where the top-down low windows
    begin) to a pool's alignment. Those bytes are then handed back to the topmost low
    window (`_keep_chipset`), which keeps every window where it was, so the chipset size
    is kept. That fails only when a fixed low window lies between the chipset window and
    the topmost dynamic one: the gap above the fixed window is where the allocator puts
    a small window first, and a larger chipset window is then the only way to close it,
    so the result raises `chipset_low_mmio_size`. Raises `fit_impossible`
    when no size works: a fixed window too small, 32-bit windows beyond the space below
    4 GiB, a bus or pin error no size changes."""
    try:
        return _fit(config, host_bits, config)
    except Below4GibError as error:
        first = error
    raised: FitResult | None = None
    for size in _chipset_low_candidates(config):
        try:
            result = _fit(replace(config, chipset_low_mmio_size=size), host_bits, config)
        except Below4GibError:
            continue
        kept = _keep_chipset(result, config, host_bits)
        if kept is not None:
            return kept
        raised = raised or result
    if raised is not None:
        return raised
    raise first


def _chipset_size(config: VmConfig) -> int:
    """The chipset low window's size as the resolver places it."""
    return max(align_up(config.chipset_low_mmio_size, PAGE_SIZE), config.arch.reserved_zone.size)


def _keep_chipset(result: FitResult, original: VmConfig, host_bits: int | None) -> FitResult | None:
    """`result` (found with a larger chipset low window) with the original chipset size,
    the difference given to the topmost dynamic low window: it keeps its start, so every
    window below it keeps its place. That window is then shrunk while everything still
    fits. None when the result does not hold (the topmost window is not the first one
    placed below the chipset window, or is not one `fit` may resize)."""
    grow = _chipset_size(result.config) - _chipset_size(original)
    rcs = result.config.pcie_root_complexes
    sizes: dict[Key, int] = {
        (w.index, w.window): w.after
        for w in result.windows
        if isinstance(_window_of(rcs[w.index], w.window), DynamicMmio)
    }
    lows = [w for w in result.windows if w.window == LOW and (w.index, LOW) in sizes]
    if not lows:
        return None
    top = max(lows, key=lambda w: w.placed.end)
    key = (top.index, LOW)
    sizes[key] += grow
    if not _holds(original, sizes):
        return None
    levels = {w.index: root_level(original.pcie_root_complexes[w.index]) for w in result.windows}
    lowest = _Search(original, levels).lower_bound(key)
    while sizes[key] - LOW_STEP >= lowest and _holds(
        original, {**sizes, key: sizes[key] - LOW_STEP}
    ):
        sizes[key] -= LOW_STEP
    return _finish(original, levels, sizes, host_bits, original)


def _holds(config: VmConfig, sizes: dict[Key, int]) -> bool:
    """Whether `config` with these window sizes resolves and assigns every BAR."""
    try:
        assign_each(resolve(with_sizes(config, sizes, 63)))
    except VmLayoutError:
        return False
    return True


def _chipset_low_candidates(config: VmConfig) -> list[int]:
    current = _chipset_size(config)
    alignments = set()
    for rc in config.pcie_root_complexes:
        if rc.devices:
            try:
                alignments.add(root_level(rc).align32)
            except VmLayoutError:
                continue
    sizes = {FOUR_GIB - align_down(FOUR_GIB - current, a) for a in alignments}
    return sorted(size for size in sizes if current < size < FOUR_GIB)


def _fit(config: VmConfig, host_bits: int | None, original: VmConfig) -> FitResult:
    levels: dict[int, Level] = {}
    keys: list[Key] = []
    for index, rc in enumerate(config.pcie_root_complexes):
        if not rc.devices:
            continue
        try:
            levels[index] = root_level(rc)
        except VmLayoutError as error:
            raise impossible(f"{rc.name}: {error.kind}: {error.message}") from None
        for window in (LOW, HIGH):
            if isinstance(_window_of(rc, window), DynamicMmio):
                keys.append((index, window))
    search = _Search(config, levels)
    sizes = {key: search.lower_bound(key) for key in keys}
    for key, size in sizes.items():
        if size > SIZE_LIMIT[key[1]]:
            raise search.too_large(key)  # before resolving: no other window could be placed
    return _finish(config, levels, _settle(search, keys, sizes), host_bits, original)


def _settle(search: _Search, keys: list[Key], sizes: dict[Key, int]) -> dict[Key, int]:
    """Search each window in turn, resolving every try, until no size changes.

    Only windows whose need depends on where they land are searched (issue 20: searching
    every window resolved the config once per window and try, quadratic in root
    complexes). Any other window needs its pool's size wherever it lands, so its lower
    bound is its size, exactly what searching it would find."""
    moving = [key for key in keys if search.position_dependent(key)]
    # A search is a function of the other sizes: one whose inputs did not change since
    # it last ran would find the same size again, so it is not run.
    seen: dict[Key, tuple[int, ...]] = {}
    for _ in range(MAX_PASSES):
        changed = False
        for key in moving:
            inputs = tuple(sizes[other] for other in keys if other != key)
            if seen.get(key) == inputs:
                continue
            size = search.search(sizes, key)
            changed |= size != sizes[key]
            sizes[key] = size
            seen[key] = inputs
        if not changed:
            return sizes
    raise impossible("window sizes do not settle (each resize moves another window)")


def _finish(
    config: VmConfig,
    levels: dict[int, Level],
    sizes: dict[Key, int],
    host_bits: int | None,
    original: VmConfig,
) -> FitResult:
    """The result for these window sizes, checked: the config resolves and assigns."""
    fitted = with_sizes(config, sizes)
    resolved = _Search(config, levels).resolve(sizes)
    try:
        assign_each(resolved)
    except VmLayoutError as error:
        raise impossible(f"{error.kind}: {error.message}") from None
    rows = []
    for index, rc in enumerate(config.pcie_root_complexes):
        if index not in levels:
            continue
        placed = resolved.pcie_root_complexes[index]
        for window in (LOW, HIGH):
            before = _window_of(rc, window)
            before_size = (
                before.size if isinstance(before, DynamicMmio) else before.end - before.start
            )
            pool, alignment, _ = pool_of(levels[index], window)
            rows.append(
                WindowFit(
                    rc.name,
                    index,
                    window,
                    before_size,
                    sizes.get((index, window), before_size),
                    pool,
                    alignment,
                    placed.low_mmio if window == LOW else placed.high_mmio,
                )
            )
    bits = config.physical_address_size if host_bits is None else host_bits
    return FitResult(
        config=fitted,
        windows=tuple(rows),
        chipset_low_before=original.chipset_low_mmio_size,
        chipset_low_after=fitted.chipset_low_mmio_size,
        layout_top=resolved.layout_top,
        host_bits=bits,
        host_bits_given=host_bits is not None,
        excess=width_excess(resolved.placed, bits),
    )
