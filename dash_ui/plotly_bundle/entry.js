// Entry of the partial plotly.js bundle (dash_ui/plotly_bundle/build.sh): core (scatter) + the traces the app uses.
var Plotly = require('plotly.js/lib/core');
Plotly.register([require('plotly.js/lib/bar'), require('plotly.js/lib/heatmap'),
                 require('plotly.js/lib/candlestick'), require('plotly.js/lib/waterfall')]);
module.exports = Plotly;
