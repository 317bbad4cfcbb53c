// Free session slots: how many more sessions of the default profile an instance takes, by the placement code's
// own `fits`, so the autoscaler counts room exactly as placement will use it.
import { fits, type ResourceRequest, type Room, type Usage } from '../sessions/placement.js';

/** Most slots counted on one instance (a profile that reserves nothing on an unlimited instance). */
export const MAX_SLOTS = 1000;

/**
 * How many sessions asking `request` still fit on `room` given `usage` (at most `MAX_SLOTS`).
 *
 * @example
 * freeSlots({ cpus: 8, memoryBytes: 2 ** 34, gpuIndices: [], maxSessions: 4 }, emptyUsage(), { cpu: 1, memoryBytes: 0, gpus: 0 }); // 4
 */
export function freeSlots(room: Room, usage: Readonly<Usage>, request: ResourceRequest): number {
  if (request.cpu <= 0 && request.memoryBytes <= 0 && request.gpus <= 0) {
    // Only the session limit counts (no loop over a thousand slots on every tick).
    return room.maxSessions === null ? MAX_SLOTS : Math.max(0, Math.min(MAX_SLOTS, room.maxSessions - usage.sessions));
  }
  const u: Usage = { cpu: usage.cpu, memoryBytes: usage.memoryBytes, gpus: new Set(usage.gpus), sessions: usage.sessions };
  let n = 0;
  while (n < MAX_SLOTS && fits(room, u, request)) {
    n++;
    u.cpu += request.cpu;
    u.memoryBytes += request.memoryBytes;
    u.sessions++;
    let granted = 0;
    for (const index of room.gpuIndices) {
      if (granted === request.gpus) break;
      if (!u.gpus.has(index)) {
        u.gpus.add(index);
        granted++;
      }
    }
  }
  return n;
}
