"use client";

import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect } from "react";
import { api, ok, origin } from "@/api/client";
import { applyStageChange, type BoardDeal } from "@/lib/board";
import { channelEventTypes, LiveStream, type AsyncApiDoc, type Envelope, type StreamStatus } from "@/lib/stream";
import { useUi } from "@/store/ui";

const RANK: Record<StreamStatus, number> = { closed: 0, live: 1, connecting: 2, reconnecting: 3 };

async function streamToken(channel: string): Promise<string> {
  const body = await ok(await api.POST("/api/v1/streams/token", { body: { channel } }));
  return body.token;
}

/**
 * Keep every list on screen current: one SSE connection per channel the visible
 * sections name, listening to the event types /asyncapi.json lists for it. A stage change moves the card at once; every event of a channel
 * then refetches that channel's queries (they are keyed by the channel name).
 */
export function useLiveStreams(channels: string[]) {
  const queryClient = useQueryClient();
  const setLive = useUi((s) => s.setLive);
  const asyncapi = useQuery({
    queryKey: ["asyncapi"],
    queryFn: async () => (await (await fetch(new URL("/asyncapi.json", origin))).json()) as AsyncApiDoc,
    staleTime: Infinity,
  });
  const key = channels.join(",");
  useEffect(() => {
    if (!key || !asyncapi.data) return;
    const doc = asyncapi.data;
    const statuses = new Map<string, StreamStatus>();
    const report = () => {
      let worst: StreamStatus = "live";
      for (const status of statuses.values()) if (RANK[status] > RANK[worst]) worst = status;
      setLive(worst);
    };
    const streams = key.split(",").map((channel) => {
      statuses.set(channel, "connecting");
      const onEvent = (event: Envelope) => {
        if (event.type === "deals.deal.stage_changed") {
          const to = String(event.data.to_stage_id);
          queryClient.setQueriesData<BoardDeal[]>({ queryKey: ["deals", "board"] }, (deals) =>
            deals ? applyStageChange(deals, event.subject, to) : deals,
          );
        }
        void queryClient.invalidateQueries({ queryKey: [channel] });
      };
      return new LiveStream({
        channel,
        types: channelEventTypes(doc, channel),
        onEvent,
        onStatus: (status) => {
          statuses.set(channel, status);
          report();
        },
        streamToken,
        origin,
      }).start();
    });
    report();
    return () => {
      for (const stream of streams) stream.close();
      setLive("closed");
    };
  }, [key, queryClient, setLive, asyncapi.data]);
}
