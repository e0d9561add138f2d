// The live view page (/live/{camera}): one camera's live video over WebRTC, with its state.

import { boot } from "/static/console.js";
import { mountLive } from "/static/ops.js";

const box = document.getElementById("live");
if (box && boot.camera) mountLive(box, boot.camera.code);
