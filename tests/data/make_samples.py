#!/usr/bin/env python3
"""Writes the malformed wire frames in this directory (tests/test_msg_reject.c checks that
hq_msg_decode rejects each one with the expected error). Run from anywhere:
python3 tests/data/make_samples.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def hdr(mtype, version=1, magic=b"HQ", reserved=0, request_id=7):
    return magic + bytes([version, mtype]) + struct.pack(">QQQQI", request_id, 0, 0, 0, reserved)


SAMPLES = {
    "short_header.bin": hdr(62)[:10],
    "bad_magic.bin": hdr(62, magic=b"XQ"),
    "bad_version.bin": hdr(62, version=2),
    "unknown_type.bin": hdr(99),
    "reserved_nonzero.bin": hdr(62, reserved=1),
    "heartbeat_with_body.bin": hdr(62) + b"\x90",
    "submit_without_body.bin": hdr(3),
    "goodbye_reason_out_of_range.bin": hdr(63) + b"\x91\x05",
    "goodbye_reason_str.bin": hdr(63) + b"\x91\xa1x",
    "goodbye_reason_negative.bin": hdr(63) + b"\x91\xff",
    "goodbye_trailing.bin": hdr(63) + b"\x91\x00\x00",
    "goodbye_deep_nesting.bin": hdr(63) + b"\x91" * 5000 + b"\x00",
    "goodbye_ext.bin": hdr(63) + b"\x91\xd4\x01\x00",
    "goodbye_c1.bin": hdr(63) + b"\x91\xc1",
    # CANCEL [tasks]: counts that promise more than the frame holds
    "cancel_array32_huge.bin": hdr(82) + b"\x91\xdd\xff\xff\xff\xff",
    "cancel_array32_bytes_left.bin": hdr(82) + b"\x91\xdd\x00\xff\xff\xff",
    "cancel_map32.bin": hdr(82) + b"\x91\xdf\xff\xff\xff\xff",
    "cancel_array16.bin": hdr(82) + b"\x91\xdc\xff\xff",
    # ERROR [code, message]
    "error_str32_huge.bin": hdr(41) + b"\x92\x01\xdb\x7f\xff\xff\xff",
    "error_code_zero.bin": hdr(41) + b"\x92\x00\xa1x",
    "error_message_nul.bin": hdr(41) + b"\x92\x01\xa3a\x00b",
    "error_message_bin.bin": hdr(41) + b"\x92\x01\xc4\x01x",
    # REGISTERED [worker_id, server_uid, heartbeat_ns, idle_timeout_ns]
    "registered_u32_overflow.bin": hdr(80) + b"\x94\xcf\x00\x00\x00\x01\x00\x00\x00\x00\xa1u\x00\x00",
    "registered_float_for_u64.bin": hdr(80) + b"\x94\x01\xa1u\xcb" + b"\x00" * 8 + b"\x00",
    # REPLY [id, json, log]
    "reply_json_truncated.bin": hdr(40) + b"\x93\x00\xd9\x10abc",
    # ASSIGN [defs, tasks]: a task pointing at a definition that is not there
    "assign_def_idx_dangling.bin": hdr(81) + b"\x92\x90\x91\x98\x01\x00\x01\x00\xc2\xc4\x00\x00\x90",
    # JOB_LIST [selector, tasks, states, flag, text, number] with a step-0 range
    "query_range_step_zero.bin": hdr(4) + b"\x96\x92\x00\x91\x93\x01\x02\x00\x90\x00\xc2\xc0\x00",
    # REGISTER whose min_utilization is NaN
    "register_utilization_nan.bin": hdr(60) + b"\x94\xdc\x00\x10" + b"\xa0" * 4 + b"\x00" * 4
    + b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00" + b"\x00\x00\xa0\x00\x00\x90\xa0" + b"\x00\x00\x00",
    # SUBMIT whose only definition writes stdout to a FILE without a path
    "submit_stdout_file_without_path.bin": hdr(3) + b"\x9a\x00\xc0\xc2\x00\xa0\xc0\x91"
    + b"\x9d\x91\xa0\x90\xa0\x93\x00\xc0\xc2\x93\x01\xc0\xc2\xc4\x00\x91\x94\x00\x00\x00\x90"
    + b"\x00\x00\x00\x00\x00\xc2\x90\x90\x90",
    # RESULTS [credit, [[job, task, instance, kind=9, time, error, allocs]]]
    "results_kind_out_of_range.bin": hdr(61) + b"\x92\x00\x91\x97\x01\x02\x03\x09\x00\xc0\x90",
}

for name, data in SAMPLES.items():
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
