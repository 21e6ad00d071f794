"""Lightning DDP on 1 or N CPU processes (gloo): ddp_validate.py's evaluations, then ddp_fit.py's fits,
in one process group (tests/test_ddp.py; one interpreter start and one group for both).

    python tests/scripts/ddp.py PACKED_ROOT OUT_DIR NUM_PROCESSES
"""
import os
import sys

os.environ["OMP_NUM_THREADS"] = "1"  # before torch loads; ranks inherit it, and Lightning keeps a set value

import torch

import ddp_fit
import ddp_validate


def main(root: str, out_dir: str, processes: int) -> None:
    ddp_validate.run(root, out_dir, processes)
    ddp_fit.run(root, out_dir, processes)
    if torch.distributed.is_initialized():
        # Leave together: a rank that exits while its peer's gloo threads still read the socket
        # can make the peer abort (SIGABRT) during interpreter shutdown.
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
