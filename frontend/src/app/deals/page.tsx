"use client";

import { Board } from "@/components/Board";
import { Shell } from "@/components/Shell";

export default function DealsPage() {
  return (
    <Shell>
      <Board />
    </Shell>
  );
}
