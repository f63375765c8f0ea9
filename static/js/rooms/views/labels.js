// Words for roles and for the moderation actions the server offers (docs/protocol.md).

export const ROLE_LABEL = { host: 'Host', cohost: 'Co-host', speaker: 'Speaker', listener: 'Listener' };

// The order in which a participant's sheet lists what we may do to them.
const TARGET_ORDER = ['hand.accept', 'hand.dismiss', 'invite.send', 'mute', 'role.cohost', 'role.demote', 'remove'];
const TARGET_LABEL = {
  'hand.accept': 'Accept hand',
  'hand.dismiss': 'Dismiss hand',
  'invite.send': 'Invite to speak',
  mute: 'Mute',
  'role.cohost': 'Make co-host',
  remove: 'Remove from room',
};

/** `[{type, label, danger}]` for the message types we may send naming `p`, in sheet order. */
export function targetButtons(p, types) {
  return TARGET_ORDER.filter((type) => types.includes(type)).map((type) => ({
    type,
    label: type === 'role.demote' ? (p.role === 'cohost' ? 'Make speaker' : 'Move to listeners') : TARGET_LABEL[type],
    danger: type === 'remove',
  }));
}

/** "Speaker, muted, speaking": what a stage tile says to a screen reader. */
export function tileStatus(p, speaking) {
  return [ROLE_LABEL[p.role], p.muted ? 'muted' : null, speaking ? 'speaking' : null, p.connected === false ? 'reconnecting' : null].filter(Boolean).join(', ');
}

/** "Listener · hand raised · invited to speak": the line under a name in their sheet. */
export function personStatus(p) {
  return [ROLE_LABEL[p.role], p.muted ? 'muted' : null, p.hand_raised ? 'hand raised' : null, p.invited ? 'invited to speak' : null].filter(Boolean).join(' · ');
}
