"use client";

import { useQuery, useQueryClient, type QueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { origin, ProblemError, session } from "@/api/client";
import { moveOnBoard, stageChangeOf, type BoardData } from "@/lib/board";
import { LiveChannels, observedChannels } from "@/lib/channels";
import { asyncApiQuery, channelEventTypes, LiveStream, type AsyncApiDoc, type Envelope, type StreamStatus } from "@/lib/stream";
import { SharedStreams, type BusLike, type LocksLike } from "@/lib/tabs";
import { authStore } from "@/store/auth";
import { useUi } from "@/store/ui";

/**
 * A stream's GET, signed like every other request (the access token in `Authorization`,
 * refreshed and asked again on a 401). Not a stream token in `?token=`: URLs end up in
 * access logs, and the token cost a POST before every connection.
 */
function streamRequest(url: string, init: { headers: Record<string, string>; signal: AbortSignal }): Promise<Response> {
  return session.fetch(new Request(url, { ...init, cache: "no-store" }));
}

/** The declared channels that name a query on screen, as "a,b" (re-read on every observer change). */
function useChannelsOnScreen(queryClient: QueryClient, declared: string[]): string {
  const known = declared.join(",");
  const read = () =>
    observedChannels(queryClient.getQueryCache().getAll(), new Set(known.split(",").filter(Boolean))).join(",");
  const [channels, setChannels] = useState(read);
  useEffect(() => {
    const cache = queryClient.getQueryCache();
    const set = new Set(known.split(",").filter(Boolean));
    const update = () => setChannels(observedChannels(cache.getAll(), set).join(","));
    update();
    return cache.subscribe((event) => {
      if (event.type === "observerAdded" || event.type === "observerRemoved" || event.type === "removed") {
        // the cache notifies while React renders: read it after this render
        queueMicrotask(update);
      }
    });
  }, [queryClient, known]);
  return channels;
}

/**
 * The page's side of the streams shared by the origin's tabs (lib/tabs.ts): one tab holds the
 * SSE connections for all of them, so that tabs never use up the browser's six connections.
 */
let shared: SharedStreams | null = null;

function sharedStreams(doc: AsyncApiDoc): SharedStreams {
  if (shared) return shared;
  const tab = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  const bus: BusLike | null =
    typeof BroadcastChannel !== "undefined" ? (new BroadcastChannel("crm2.streams") as BusLike) : null;
  const locks: LocksLike | null = typeof navigator !== "undefined" && navigator.locks ? navigator.locks : null;
  const hub = new SharedStreams({
    tab,
    bus,
    locks,
    openStream: (channel, lastEventId, handlers) =>
      new LiveStream({ channel, types: channelEventTypes(doc, channel), request: streamRequest, origin, lastEventId, ...handlers }),
  });
  hub.setSignedIn(authStore.getState().tokens !== null);
  authStore.subscribe((state, previous) => {
    hub.setSignedIn(state.tokens !== null);
    // new tokens carry the session's current permissions: a channel refused with 403 may open now
    if (state.tokens !== null && state.tokens !== previous.tokens) hub.resumeUnavailable();
  });
  // leaving the page hands the streams over at once; a page restored from the back/forward
  // cache joins again
  window.addEventListener("pagehide", () => hub.stop());
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) hub.start();
  });
  // a frozen tab (Chromium freezes some hidden tabs) cannot relay: it leaves until resumed
  document.addEventListener("freeze", () => hub.stop());
  document.addEventListener("resume", () => hub.start());
  shared = hub.start();
  return hub;
}

/**
 * One set of streams per QueryClient, kept across pages: each page mounts its own Shell, and
 * a stream still wanted on the next page (the bell's `notifications`, `deals` from the board
 * to a deal) stays open through the navigation instead of reconnecting.
 */
const managers = new WeakMap<QueryClient, LiveChannels>();

function managerFor(queryClient: QueryClient, doc: AsyncApiDoc, setLive: (s: StreamStatus) => void): LiveChannels {
  let manager = managers.get(queryClient);
  if (manager) return manager;
  const hub = sharedStreams(doc);
  manager = new LiveChannels({
    open: (channel, onStatus) => {
      const onEvent = (event: Envelope) => {
        if (event.type === "deals.deal.stage_changed") {
          // the card moves (and takes the event's version, when it carries one) at once
          const change = stageChangeOf(event);
          queryClient.setQueriesData<BoardData>({ queryKey: ["deals", "board"] }, (board) =>
            moveOnBoard(board, change.dealId, change.toStageId, change.version),
          );
        }
        void queryClient.invalidateQueries({ queryKey: [channel] });
      };
      // the stream skipped events (a resume from too far back): the channel's data is read again
      const onReset = () => void queryClient.invalidateQueries({ queryKey: [channel] });
      return hub.subscribe(channel, { onEvent, onStatus, onReset });
    },
    onStatus: setLive,
    // events missed while the channel was closed: its cached queries refetch
    onResumed: (channel) => void queryClient.invalidateQueries({ queryKey: [channel] }),
  });
  managers.set(queryClient, manager);
  return manager;
}

/**
 * Keep every list on screen current: one SSE connection per channel whose data is on screen
 * in any of the origin's tabs, held by one of them (see lib/channels.ts for why not one per
 * enabled section, lib/tabs.ts for why not one per tab), listening to the event types
 * /asyncapi.json lists for it. A stage change moves the card at once; every event of a
 * channel then refetches that channel's queries (they are keyed by the channel name).
 */
export function useLiveStreams(declared: string[]) {
  const queryClient = useQueryClient();
  const setLive = useUi((s) => s.setLive);
  const asyncapi = useQuery(
    asyncApiQuery(async () => {
      // a failed read is retried as an error, never a problem document taken for the channels
      const response = await fetch(new URL("/asyncapi.json", origin));
      if (!response.ok) throw await ProblemError.from(response);
      return (await response.json()) as AsyncApiDoc;
    }),
  );
  const channels = useChannelsOnScreen(queryClient, declared);
  const doc = asyncapi.data;

  useEffect(() => {
    if (!doc) return;
    managerFor(queryClient, doc, setLive).want(channels ? channels.split(",") : []);
  }, [channels, doc, queryClient, setLive]);

  // leaving the page (or signing out): its streams close after the linger unless the next
  // page wants them too
  useEffect(() => () => managers.get(queryClient)?.want([]), [queryClient]);
}
