import { useRef, useState } from "react";

import { oneAtATime } from "@/lib/forms";

/**
 * A button's or form's request, one at a time: `oneAtATime` drops a second click or submit
 * in the same frame (before React has re-rendered), `busy` disables the control while the
 * request is out.
 */
export function useOneAtATime(): [boolean, (send: () => Promise<void>) => Promise<void>] {
  const [busy, setBusy] = useState(false);
  const guard = useRef(oneAtATime()).current;
  const run = async (send: () => Promise<void>) => {
    await guard(async () => {
      setBusy(true);
      try {
        await send();
      } finally {
        setBusy(false);
      }
    });
  };
  return [busy, run];
}
