import io

from tf_factorgan import progress


class Clock:
    """Seconds that move only when a test moves them."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _progress(terminal, columns=None, start=0):
    clock, stream = Clock(), io.StringIO()
    return progress.Progress(300, start, stream=stream, terminal=terminal, columns=columns,
                             clock=clock, every_seconds=30), clock, stream


def test_rate_and_time_left_count_training_calls_after_the_first_only():
    bar, clock, _ = _progress(terminal=False)
    bar.trained(50, 40.0)  # the first call traces and compiles the step
    assert bar.rate() is None and bar.status() == "step 50/300 (16%)"
    clock.now += 600  # an evaluation and a checkpoint: no training
    bar.trained(100, 2.0)
    bar.trained(150, 2.0)
    assert bar.rate() == 25.0
    bar.advance(150, 1.0)
    assert bar.status() == "step 150/300 (50%), 25.0 steps/s, 0:06 left, g_loss 1.000"


def test_without_a_terminal_plain_lines_every_interval_and_at_the_end():
    bar, clock, stream = _progress(terminal=False)
    bar.trained(50, 5.0)
    bar.advance(50, 4.9)
    clock.now = 10
    bar.trained(100, 2.0)
    bar.advance(100, 3.0)  # 10 s after the last line: none
    bar.say("step 100: evaluating")
    clock.now = 45
    bar.trained(200, 4.0)
    bar.advance(200, 2.0)
    clock.now = 46
    bar.trained(300, 4.0)
    bar.advance(300, 1.5)  # the last step always
    bar.close()
    assert stream.getvalue() == (
        "training: step 50/300 (16%), g_loss 4.900\n"
        "step 100: evaluating\n"
        "training: step 200/300 (66%), 25.0 steps/s, 0:04 left, g_loss 2.000\n"
        "training: step 300/300 (100%), 25.0 steps/s, 0:00 left, g_loss 1.500\n")


def test_on_a_terminal_of_no_width_the_bar_is_80_columns_and_messages_get_their_own_line():
    bar, _, stream = _progress(terminal=True, columns=0)
    bar.trained(50, 5.0)
    bar.trained(150, 4.0)
    bar.advance(150, 1.0)
    # 79 columns: 60 for the status, 7 for the bar, half full.
    line = "training [###----] step 150/300 (50%), 25.0 steps/s, 0:06 left, g_loss 1.000"
    assert stream.getvalue() == f"\r{line.ljust(79)}\r"
    bar.say("step 150: fid_upper 12.3")
    # The bar's line is blanked first, so the message does not share it.
    assert stream.getvalue() == f"\r{line.ljust(79)}\r\r{' ' * 79}\rstep 150: fid_upper 12.3\n"
    bar.advance(150)
    bar.close()
    assert stream.getvalue().endswith(f"\r{line.ljust(79)}\r\r{line}\n")


def test_the_bar_keeps_its_width_while_the_status_grows():
    bar, _, _ = _progress(terminal=True, columns=100)
    bar.advance(30)
    assert bar.bar_line() == "training [##-------------------------] step 30/300 (10%)"
    bar.trained(30, 5.0)
    bar.trained(60, 1.0)
    bar.advance(60, 0.5)
    assert bar.bar_line() == (
        "training [#####----------------------] step 60/300 (20%), 30.0 steps/s, 0:08 left, "
        "g_loss 0.500")


def test_a_narrow_terminal_gets_the_status_without_a_bar_cut_to_its_width():
    bar, _, _ = _progress(terminal=True, columns=40, start=120)
    bar.advance(150, 1.0)
    assert bar.bar_line() == "training step 150/300 (50%), g_loss 1.0"  # 39 columns


def test_a_disabled_progress_writes_nothing():
    bar, _, stream = _progress(terminal=True)
    bar.enabled = False
    bar.trained(50, 1.0)
    bar.advance(50, 1.0)
    bar.say("hello")
    bar.close()
    assert stream.getvalue() == ""


def test_durations_read_as_clock_times():
    assert [progress.duration(s) for s in (0, 7.4, 62, 3723)] == ["0:00", "0:07", "1:02", "1:02:03"]


def test_a_training_stage_names_itself_and_its_loss():
    """Proxy MR's predictor and the realism segmenter show their own name and loss."""
    stream = io.StringIO()
    bar = progress.Progress(20, 0, stream=stream, terminal=False, name="predictor", loss_name="loss")
    bar.trained(10, 2.0)
    bar.trained(20, 2.0)
    bar.advance(20, 0.25)
    assert stream.getvalue() == "predictor: step 20/20 (100%), 5.0 steps/s, 0:00 left, loss 0.250\n"
    bar.terminal, bar._columns = True, 80
    assert bar.bar_line() == "predictor [######] step 20/20 (100%), 5.0 steps/s, 0:00 left, loss 0.250"
