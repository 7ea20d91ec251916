"""kubelet's image events: reasons, types and the exact message formats."""

from __future__ import annotations

from typing import Literal

from ocistore._valueclass import field, valueclass

EventType = Literal["Normal", "Warning"]

# Event reasons (pkg/kubelet/events/event.go).
PULLING = "Pulling"
PULLED = "Pulled"
FAILED = "Failed"
BACK_OFF = "BackOff"
INSPECT_FAILED = "InspectFailed"
ERR_IMAGE_NEVER_PULL = "ErrImageNeverPull"


@valueclass
class ImageEvent:
    """One event as kubelet would record it against the container."""

    type: EventType
    reason: str
    message: str
    image: str
    pod: str | None = None
    container: str | None = None
    extra: dict[str, object] = field(default_factory=dict, compare=False)


def go_duration(seconds: float) -> str:
    """Formats seconds like Go's ``time.Duration.String()`` after truncation to milliseconds."""
    millis = int(seconds * 1000)
    if millis == 0:
        return "0s"
    if millis < 1000:
        return f"{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = rest / 1000
    text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


def already_present(image: str, *, verified_access: bool) -> str:
    """``Pulled`` message when nothing had to be pulled."""
    if verified_access:
        return (
            f"Container image {go_quote(image)} already present on machine "
            "and can be accessed by the pod"
        )
    return f"Container image {go_quote(image)} already present on machine"


def never_pull(image: str) -> str:
    """``ErrImageNeverPull`` message (also used when a present image may not be accessed)."""
    return f"Container image {go_quote(image)} is not present with pull policy of Never"


def pulling(image: str) -> str:
    """``Pulling`` message."""
    return f"Pulling image {go_quote(image)}"


def pulled(image: str, duration: float, total: float, size: int) -> str:
    """``Pulled`` message after a pull, with kubelet's duration and size formatting."""
    return (
        f"Successfully pulled image {go_quote(image)} in {go_duration(duration)} "
        f"({go_duration(total)} including waiting). Image size: {size} bytes."
    )


def failed(image: str, error: str) -> str:
    """``Failed`` message."""
    return f"Failed to pull image {go_quote(image)}: {error}"


def back_off(image: str, previous_error: str | None) -> str:
    """``BackOff`` message; newest kubelets append the previous failure."""
    message = f"Back-off pulling image {go_quote(image)}"
    return f"{message}: {previous_error}" if previous_error else message


def inspect_failed(image: str, error: str) -> str:
    """``InspectFailed`` message."""
    return f"Failed to inspect image {go_quote(image)}: {error}"


def go_quote(text: str) -> str:
    """Go's ``%q``: a double-quoted string with Go escapes (ASCII printable kept)."""
    out = ['"']
    for char in text:
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif " " <= char <= "~" or (ord(char) > 0x7F and char.isprintable()):
            out.append(char)
        else:
            out.append(f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")
    out.append('"')
    return "".join(out)
